import StarlingCore
import StarlingPOSIX

/// Stdout helpers: aligned tables for people, one JSON document for programs.
enum Output {
    static func line(_ text: String = "") { System.write(text + "\n", to: 1) }
    static func error(_ text: String) { System.write("starling: \(text)\n", to: 2) }

    static func json(_ value: JSON) { line(value.serialized(pretty: true)) }

    /// Columns padded to the widest cell; the last column is not padded.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }.joined(separator: "  ")
        }
        return ([render(header)] + rows.map(render)).joined(separator: "\n")
    }

    static func printTable(_ header: [String], _ rows: [[String]]) { line(table(header, rows)) }

    static func millis(_ nanos: UInt64) -> String {
        let value = Double(nanos) / 1_000_000
        return value < 10 ? String(Double(Int(value * 100)) / 100) + " ms" : String(Int(value)) + " ms"
    }
}
