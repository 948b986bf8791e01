import Starling
import StarlingCore
import StarlingPOSIX

/// Stdout helpers: aligned tables for people, one JSON document for programs. Remote strings
/// are escaped by ``Display`` before they get here.
enum Output {
    static func line(_ text: String = "") { System.write(text + "\n", to: 1) }
    static func raw(_ text: String) { System.write(text, to: 1) }
    static func error(_ text: String) { System.write("starling: \(text)\n", to: 2) }

    static func json(_ value: JSON) { line(value.serialized(pretty: true)) }

    static func table(_ header: [String], _ rows: [[String]]) -> String { Display.table(header, rows) }
    static func printTable(_ header: [String], _ rows: [[String]]) { line(table(header, rows)) }
    static func millis(_ nanos: UInt64) -> String { Display.millis(nanos) }
}
