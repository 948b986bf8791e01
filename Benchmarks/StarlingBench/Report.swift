import StarlingCore
import StarlingPOSIX

/// One figure: the JSON record of Benchmarks/README.md.
struct Record {
    var scenario: String
    var name: String
    var value: Double
    var unit: String
    var n: Int?

    var json: JSON {
        var fields: [(String, JSON)] = [("scenario", .string(scenario)), ("name", .string(name)), ("value", .number(value)), ("unit", .string(unit))]
        if let n { fields.append(("n", .int(n))) }
        return .object(fields)
    }
}

/// Collects figures and prints them as they come.
final class Report {
    var records: [Record] = []

    func add(_ scenario: String, _ name: String, _ value: Double, _ unit: String, n: Int? = nil) {
        let record = Record(scenario: scenario, name: name, value: value, unit: unit, n: n)
        records.append(record)
        System.write("  \(scenario)\(n.map { " n=\($0)" } ?? ""): \(name) = \(Report.format(value)) \(unit)\n", to: 2)
    }

    /// Median, p99 (when there are at least 20 samples) and max of a sample set.
    func summary(_ scenario: String, _ name: String, _ samples: [Double], _ unit: String, n: Int? = nil) {
        guard !samples.isEmpty else {
            System.write("  \(scenario): \(name): no samples\n", to: 2)
            return
        }
        let sorted = samples.sorted()
        add(scenario, "\(name) median", Report.percentile(sorted, 0.5), unit, n: n)
        if sorted.count >= 20 { add(scenario, "\(name) p99", Report.percentile(sorted, 0.99), unit, n: n) }
        add(scenario, "\(name) max", sorted.last!, unit, n: n)
    }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
    }

    static func format(_ value: Double) -> String {
        if value >= 100 || value == value.rounded() { return String(Int(value.rounded())) }
        return String(Double(Int(value * 100)) / 100)
    }

    var markdown: String {
        var lines = ["| scenario | n | figure | value | unit |", "| --- | --- | --- | --- | --- |"]
        for record in records {
            lines.append("| \(record.scenario) | \(record.n.map(String.init) ?? "") | \(record.name) | \(Report.format(record.value)) | \(record.unit) |")
        }
        return lines.joined(separator: "\n")
    }

    var json: JSON { .array(records.map(\.json)) }
}
