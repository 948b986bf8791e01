import StarlingCore
import StarlingPOSIX

/// Reads the JSON-lines event log an agent writes with `--event-log`: each record has the
/// agent's own wall-clock time of the event, so timings do not depend on how fast anyone polls.
package enum EventLog {
    package struct Record: Sendable {
        /// Wall-clock microseconds since the epoch when the agent emitted the event.
        package var micros: UInt64
        package var event: JSON
        package var kind: String { event["event"]?.stringValue ?? "" }
    }

    package static func read(_ path: String) -> [Record] {
        guard let bytes = try? System.readFile(path) else { return [] }
        return String(decoding: bytes, as: UTF8.self).split(separator: "\n").compactMap { line in
            // The file is input like any other: a time out of UInt64's range skips the record.
            guard let json = try? JSON.parse(String(line)), let micros = json["t_us"]?.uint64Value, let event = json["event"] else { return nil }
            return Record(micros: micros, event: event)
        }
    }

    /// The first record matching `predicate` at or after `since` (wall µs).
    package static func first(_ path: String, since: UInt64 = 0, _ predicate: (Record) -> Bool) -> Record? {
        read(path).first { $0.micros >= since && predicate($0) }
    }
}
