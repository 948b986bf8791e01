import StarlingCore
import StarlingPOSIX

/// Levels for the agent's stderr log.
public enum LogLevel: Int, Sendable, Comparable, CaseIterable {
    case debug = 0, info, warning, error

    public init?(name: String) {
        switch name.lowercased() {
        case "debug": self = .debug
        case "info": self = .info
        case "warning", "warn": self = .warning
        case "error": self = .error
        default: return nil
        }
    }

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
public struct Logger: Sendable {
    public var level: LogLevel
    public var name: String

    public init(level: LogLevel = .info, name: String) {
        self.level = level
        self.name = name
    }

    public func log(_ level: LogLevel, _ message: String) {
        guard level >= self.level else { return }
        System.write(Self.line(level, name: name, message, micros: System.wallMicros()), to: 2)
    }

    /// One record as written, newline included.
    static func line(_ level: LogLevel, name: String, _ message: String, micros: UInt64) -> String {
        "\(timestamp(micros)) \(level.label) [\(Escape.display(name))] \(Escape.display(message))\n"
    }

    /// ISO 8601 UTC with milliseconds, computed without Foundation.
    public static func timestamp(_ micros: UInt64) -> String {
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

    /// The human form of an event; nil for events that are not logged at info.
    public static func describe(_ event: PeerEvent) -> (LogLevel, String)? {
        switch event {
        case .joined(let name, let id, let endpoint): (.info, "member \(name) (\(id.short)) joined at \(endpoint)")
        case .statusChanged(let name, let id, let from, let to):
            (to == .dead ? .warning : .info, "member \(name) (\(id.short)) \(from.name) -> \(to.name)")
        case .refuted(let incarnation): (.warning, "refuted suspicion of this node (incarnation \(incarnation))")
        case .replaced(let name, let old, let new): (.info, "member \(name) restarted: \(old.short) replaced by \(new.short)")
        case .reaped(let name, let id): (.debug, "member \(name) (\(id.short)) reaped")
        case .duplicateName(let name, let ids): (.warning, "two nodes named \(name): \(ids.map(\.short).joined(separator: ", "))")
        case .searching: (.info, "mingle: searching for neighbours")
        case .synced(let nodes, let clock, let received, let complete):
            (.info, "mingle: synced with \(nodes) node\(nodes == 1 ? "" : "s") (clock \(clock), \(received) revoked ids received)\(complete ? "" : ", deadline reached")")
        case .alone: (.info, "mingle: no neighbours answered; alone")
        case .revoked(let ids, let by): (.info, "revoked \(ids.count) id\(ids.count == 1 ? "" : "s") (by \(by))")
        case .leaderChanged(let topic, let leader, _, let term):
            (.info, "election '\(topic)' term \(term): leader \(leader ?? "none")")
        case .noQuorum(let topic, let term, let have, let need):
            (.warning, "election '\(topic)' term \(term): no quorum (\(have) of \(need) needed)")
        case .dropped(let reason, let from): (.debug, "dropped datagram from \(from): \(reason)")
        case .stalled(let millis): (.warning, "event loop stalled for \(millis) ms; silence clocks moved on")
        case .reply, .requestFinished: nil
        }
    }
}
