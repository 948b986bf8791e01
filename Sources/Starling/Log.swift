import StarlingCore
import Synchronization
import StarlingPOSIX

/// Levels for the agent's stderr log.
public enum LogLevel: Int, Sendable, Comparable, CaseIterable {
    case debug = 0, info, warning, error

    /// debug, info, warning or error (any case); nil for anything else.
    public init?(name: String) {
        switch name.lowercased() {
        case "debug": self = .debug
        case "info": self = .info
        case "warning", "warn": self = .warning
        case "error": self = .error
        default: return nil
        }
    }

    /// Less severe first.
    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Its name as flags and JSON records spell it.
    public var name: String {
        switch self {
        case .debug: "debug"
        case .info: "info"
        case .warning: "warning"
        case .error: "error"
        }
    }

    var label: String {
        switch self {
        case .debug: "DEBUG"
        case .info: "INFO"
        case .warning: "WARN"
        case .error: "ERROR"
        }
    }
}

/// How log records are written: `text` for people (the default), `json` for collectors.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `2026-11-28T12:00:00.000Z INFO [name] message`
    case text
    /// One JSON object per line: `time`, `level`, `agent`, `message`, and for a cluster event
    /// `event` and its fields (the names `watch` and the event log use).
    case json
}

/// One-line log records on stderr with a UTC timestamp. The name and the message are escaped
/// (`Escape.display`, or JSON's escapes), so text from the network can never start a line of
/// its own. The level can change while running (reload).
package final class Logger: Sendable {
    private let threshold: Atomic<Int>
    package let name: String
    package let format: LogFormat

    package init(level: LogLevel = .info, name: String, format: LogFormat = .text) {
        threshold = Atomic(level.rawValue)
        self.name = name
        self.format = format
    }

    package var level: LogLevel {
        get { LogLevel(rawValue: threshold.load(ordering: .relaxed)) ?? .info }
        set { threshold.store(newValue.rawValue, ordering: .relaxed) }
    }

    /// Writes one record at `level` if the threshold lets it through; `event` adds the cluster
    /// event's name and fields to a JSON record.
    package func log(_ level: LogLevel, _ message: String, event: (name: String, fields: [(String, JSON)])? = nil) {
        guard level >= self.level else { return }
        let micros = System.wallMicros()
        let line = switch format {
        case .text: Self.line(level, name: name, message, micros: micros)
        case .json: Self.jsonLine(level, name: name, message, event: event, micros: micros)
        }
        System.write(line, to: 2)
    }

    /// One record as written, newline included.
    static func line(_ level: LogLevel, name: String, _ message: String, micros: UInt64) -> String {
        "\(timestamp(micros)) \(level.label) [\(Escape.display(name))] \(Escape.display(message))\n"
    }

    /// One JSON record, newline included; event fields never replace the record's own keys.
    static func jsonLine(_ level: LogLevel, name: String, _ message: String, event: (name: String, fields: [(String, JSON)])?,
                         micros: UInt64) -> String {
        var fields: [(String, JSON)] = [("time", .string(timestamp(micros))), ("level", .string(level.name)),
                                        ("agent", .string(name)), ("message", .string(message))]
        if let event {
            fields.append(("event", .string(event.name)))
            let reserved: Set<String> = ["time", "level", "agent", "message", "event"]
            fields += event.fields.filter { !reserved.contains($0.0) }
        }
        return JSON.object(fields).serialized() + "\n"
    }

    /// ISO 8601 UTC with milliseconds, computed without Foundation.
    package static func timestamp(_ micros: UInt64) -> String {
        let seconds = Int64(micros / 1_000_000)
        let millis = Int(micros / 1_000 % 1_000)
        var days = seconds / 86_400
        let secondOfDay = Int(seconds % 86_400)
        // Civil-from-days (Howard Hinnant's algorithm).
        days += 719_468
        let era = days / 146_097
        let dayOfEra = days - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(Int64(secondOfDay / 3600), 2)):"
            + "\(pad(Int64(secondOfDay / 60 % 60), 2)):\(pad(Int64(secondOfDay % 60), 2)).\(pad(Int64(millis), 3))Z"
    }

    /// The human form of an event (``PeerEvent/rendering``); nil for events that are not logged.
    package static func describe(_ event: PeerEvent) -> (LogLevel, String)? {
        let rendering = event.rendering
        guard let summary = rendering.summary else { return nil }
        switch rendering.severity {
        case .debug: return (.debug, summary)
        case .info: return (.info, summary)
        case .warning: return (.warning, summary)
        }
    }
}
