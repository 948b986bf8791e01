import StarlingCore
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

    var label: String {
        switch self {
        case .debug: "DEBUG"
        case .info: "INFO"
        case .warning: "WARN"
        case .error: "ERROR"
        }
    }
}

/// One-line log records on stderr with a UTC timestamp. The name and the message are escaped
/// (`Escape.display`), so text from the network can never start a line of its own.
package struct Logger: Sendable {
    package var level: LogLevel
    package var name: String

    package init(level: LogLevel = .info, name: String) {
        self.level = level
        self.name = name
    }

    package func log(_ level: LogLevel, _ message: String) {
        guard level >= self.level else { return }
        System.write(Self.line(level, name: name, message, micros: System.wallMicros()), to: 2)
    }

    /// One record as written, newline included.
    static func line(_ level: LogLevel, name: String, _ message: String, micros: UInt64) -> String {
        "\(timestamp(micros)) \(level.label) [\(Escape.display(name))] \(Escape.display(message))\n"
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
