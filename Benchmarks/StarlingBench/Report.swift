import StarlingCore
import StarlingPOSIX

/// The rounds of one figure: the samples taken and the rounds that failed, each with why (and,
/// when the round still produced a time, that time, reported apart from the samples).
struct Samples {
    struct Failure {
        var reason: String
        var value: Double?
    }

    private(set) var values: [Double] = []
    private(set) var failures: [Failure] = []

    init(_ values: [Double] = []) { self.values = values }

    /// One round that failed for `reason`.
    static func failing(_ reason: String) -> Samples {
        var samples = Samples()
        samples.fail(reason)
        return samples
    }

    mutating func add(_ value: Double) { values.append(value) }
    var median: Double? { values.isEmpty ? nil : Report.percentile(values.sorted(), 0.5) }
    mutating func fail(_ reason: String, value: Double? = nil) { failures.append(Failure(reason: reason, value: value)) }

    var rounds: Int { values.count + failures.count }

    /// Failures grouped by reason, in the order first seen, with the times of those that had one.
    var failureGroups: [(reason: String, count: Int, values: [Double])] {
        var groups: [(reason: String, count: Int, values: [Double])] = []
        for failure in failures {
            if let index = groups.firstIndex(where: { $0.reason == failure.reason }) {
                groups[index].count += 1
                if let value = failure.value { groups[index].values.append(value) }
            } else {
                groups.append((failure.reason, 1, failure.value.map { [$0] } ?? []))
            }
        }
        return groups
    }
}

/// One figure: the JSON record of Benchmarks/README.md. `samples`, `rounds` and `failures` are
/// there when the figure summarises rounds.
struct Record {
    var scenario: String
    var name: String
    var value: Double
    var unit: String
    var n: Int?
    var samples: Int?
    var rounds: Int?
    var failures: [(reason: String, count: Int, values: [Double])] = []
    /// The unit of the failed rounds' values (the figure's unit; `unit` of a "failed rounds"
    /// record is "of R").
    var failureUnit = ""
    var role = Role.figure

    enum Role { case figure, failedRounds, scenarioTotal }

    var json: JSON {
        var fields: [(String, JSON)] = [("scenario", .string(scenario)), ("name", .string(name)), ("value", .number(value)), ("unit", .string(unit))]
        if let n { fields.append(("n", .int(n))) }
        if let samples { fields.append(("samples", .int(samples))) }
        if let rounds {
            fields.append(("rounds", .int(rounds)))
            fields.append(("failed", .int(failures.reduce(0) { $0 + $1.count })))
            fields.append(("failures", .array(failures.map { group in
                .object([("reason", .string(group.reason)), ("count", .int(group.count)), ("values", .array(group.values.map { .number($0) })),
                    ("values_unit", .string(failureUnit))])
            })))
        }
        return .object(fields)
    }
}

/// Collects figures and prints them as they come; keeps, per scenario, how many rounds were run,
/// how many gave a sample and why the others failed, so that no round is dropped silently.
final class Report {
    var records: [Record] = []
    private var tally: [String: (rounds: Int, samples: Int, failures: [Samples.Failure])] = [:]
    private var closed: Set<String> = []
    static let failedSuffix = ": failed rounds"

    /// A single figure (a count, a size, a rate derived from a round counted elsewhere).
    /// `samples` is the number of timed samples the value summarises, when it does.
    func add(_ scenario: String, _ name: String, _ value: Double, _ unit: String, n: Int? = nil, samples: Int? = nil) {
        records.append(Record(scenario: scenario, name: name, value: value, unit: unit, n: n, samples: samples))
        if let samples { count(scenario, rounds: samples, samples: samples, failures: []) }
        let count = samples.map { " (\($0) samples)" } ?? ""
        System.write("  \(Report.label(scenario, n)): \(name) = \(Report.format(value)) \(unit)\(count)\n", to: 2)
    }

    /// Median, p99 (from 100 samples) and max of the samples, and always how many rounds failed
    /// and why. One round gives one value. Percentiles are nearest-rank (see `percentile`).
    func summary(_ scenario: String, _ name: String, _ samples: Samples, _ unit: String, n: Int? = nil) {
        count(scenario, rounds: samples.rounds, samples: samples.values.count, failures: samples.failures)
        let sorted = samples.values.sorted()
        var figures: [(String, Double)] = []
        if sorted.count == 1 && samples.rounds == 1 {
            figures = [("", sorted[0])]
        } else if let last = sorted.last {
            figures.append((" median", Report.percentile(sorted, 0.5)))
            if sorted.count >= 100 { figures.append((" p99 (nearest rank)", Report.percentile(sorted, 0.99))) }
            figures.append((" max", last))
        }
        for (suffix, value) in figures {
            records.append(Record(scenario: scenario, name: name + suffix, value: value, unit: unit, n: n,
                samples: sorted.count, rounds: samples.rounds, failures: samples.failureGroups))
        }
        let failed = samples.failures.count
        records.append(Record(scenario: scenario, name: name + Report.failedSuffix, value: Double(failed), unit: "of \(samples.rounds)", n: n,
            samples: sorted.count, rounds: samples.rounds, failures: samples.failureGroups, failureUnit: unit, role: .failedRounds))
        let shown = figures.isEmpty ? "no samples" : figures.map { "\($0.0.isEmpty ? "" : String($0.0.dropFirst()) + " ")\(Report.format($0.1)) \(unit)" }.joined(separator: ", ")
        System.write("  \(Report.label(scenario, n)): \(name): \(shown) — \(Report.describe(samples: sorted.count, rounds: samples.rounds, samples.failureGroups, unit: unit))\n", to: 2)
    }

    /// "4 samples of 5 rounds, 1 failed: 1 hit mingle deadline (3001 ms)".
    static func describe(samples: Int, rounds: Int, _ groups: [(reason: String, count: Int, values: [Double])], unit: String) -> String {
        let failed = groups.reduce(0) { $0 + $1.count }
        var text = "\(samples) sample\(samples == 1 ? "" : "s") of \(rounds) round\(rounds == 1 ? "" : "s"), \(failed) failed"
        if !groups.isEmpty {
            text += ": " + groups.map { group in
                let times = group.values.isEmpty ? "" : " (\(group.values.map { Report.format($0) }.joined(separator: ", ")) \(unit))"
                return "\(group.count) \(group.reason)\(times)"
            }.joined(separator: "; ")
        }
        return text
    }

    private func count(_ scenario: String, rounds: Int, samples: Int, failures: [Samples.Failure]) {
        var entry = tally[scenario] ?? (0, 0, [])
        entry.rounds += rounds
        entry.samples += samples
        entry.failures += failures
        tally[scenario] = entry
    }

    /// Each scenario's totals over all its figures, printed and recorded once, after it has run
    /// (one run may fill several: revoke, ping and election share a cluster).
    func closePending() {
        for scenario in tally.keys.sorted() where !closed.contains(scenario) {
            closed.insert(scenario)
            close(scenario)
        }
    }

    private func close(_ scenario: String) {
        let entry = tally[scenario] ?? (0, 0, [])
        var all = Samples()
        for failure in entry.failures { all.fail(failure.reason, value: failure.value) }
        let groups = all.failureGroups.map { (reason: $0.reason, count: $0.count, values: [Double]()) }
        records.append(Record(scenario: scenario, name: "all figures: failed rounds", value: Double(entry.failures.count), unit: "of \(entry.rounds)",
            samples: entry.samples, rounds: entry.rounds, failures: groups, role: .scenarioTotal))
        System.write("  \(scenario) total: \(Report.describe(samples: entry.samples, rounds: entry.rounds, groups, unit: ""))\n", to: 2)
    }

    /// Nearest-rank percentile: the smallest sample with at least `p` of the samples at or below
    /// it, sorted[⌈p·n⌉ − 1]. The median of an even count is the lower middle value; p99 is
    /// only shown from 100 samples, below that it is the max.
    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return sorted[min(sorted.count, max(1, rank)) - 1]
    }

    static func label(_ scenario: String, _ n: Int?) -> String { "\(scenario)\(n.map { " n=\($0)" } ?? "")" }

    static func format(_ value: Double) -> String {
        guard value.isFinite else { return String(describing: value) }
        if value.magnitude >= 100 || value == value.rounded() { return String(Int(value.rounded())) }
        return String(Double(Int(value * 100)) / 100)
    }

    var markdown: String {
        var lines = ["| scenario | n | figure | value | unit | samples |", "| --- | --- | --- | --- | --- | --- |"]
        // A figure's "failed rounds" row only when some failed: its other rows say "5 of 5".
        for record in records where !(record.role == .failedRounds && record.value == 0) {
            let samples = record.rounds.map { "\(record.samples ?? 0) of \($0)" } ?? record.samples.map(String.init) ?? ""
            lines.append("| \(record.scenario) | \(record.n.map(String.init) ?? "") | \(record.name) | \(Report.format(record.value)) | \(record.unit) | \(samples) |")
        }
        let failed = records.filter { $0.role == .failedRounds && !$0.failures.isEmpty }
        if !failed.isEmpty {
            lines += ["", "Failed rounds:"]
            for record in failed {
                lines.append("- \(Report.label(record.scenario, record.n)): \(record.name.dropLast(Report.failedSuffix.count)): "
                    + Report.describe(samples: record.samples ?? 0, rounds: record.rounds ?? 0, record.failures, unit: record.failureUnit))
            }
        }
        return lines.joined(separator: "\n")
    }

    var json: JSON { .array(records.map(\.json)) }
}
