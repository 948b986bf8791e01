import StarlingCore

// How the `starling` CLI shows control replies. A reply may be forged (issue 14 items 5 and 26):
// every number goes through a checked conversion and shows "?" when it is missing, of the wrong
// type or out of range; every remote string is escaped before it reaches a terminal. Package
// access so that tests feed forged bodies straight to these functions, without sockets.

/// Renderers for control replies: table rows and lines built from reply bodies, never trapping.
package enum Display {
    /// Shown for a number that is of the wrong type or out of range.
    package static let unknown = "?"

    /// A remote value as a cell: strings escaped, other values as JSON, "-" when absent.
    package static func cell(_ value: JSON?) -> String {
        value.map { Escape.display($0.plain) } ?? "-"
    }

    /// A whole-number field (a count, a clock, an age): its digits; "?" for a fraction, a
    /// negative, a value beyond 2^64 or another type; "-" when absent.
    package static func count(_ value: JSON?) -> String {
        guard let value, value != .null else { return "-" }
        return value.uint64Value.map { String($0) } ?? unknown
    }

    /// Unix-epoch milliseconds as ISO 8601 UTC; "?" (padded to the same width) when missing or
    /// out of range.
    package static func timestamp(millis value: JSON?) -> String {
        let width = 24
        guard let millis = value?.uint64Value, case (let micros, false) = millis.multipliedReportingOverflow(by: 1_000) else {
            return unknown + String(repeating: " ", count: width - unknown.count)
        }
        return Logger.timestamp(micros)
    }

    /// Columns padded to the widest cell; the last column is not padded. Cells are escaped.
    package static func table(_ header: [String], _ rows: [[String]]) -> String {
        let rows = rows.map { $0.map { Escape.display($0) } }
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 || index >= widths.count ? cell : cell + String(repeating: " ", count: max(0, widths[index] - cell.count))
            }.joined(separator: "  ")
        }
        return ([render(header)] + rows.map(render)).joined(separator: "\n")
    }

    package static func millis(_ nanos: UInt64) -> String {
        let value = Double(nanos) / 1_000_000
        return value < 10 ? String(Double(Int(value * 100)) / 100) + " ms" : String(Int(value)) + " ms"
    }

    // MARK: Commands

    package static let pingHeader = ["NAME", "ID", "CLOCK", "REPLY"]

    package static func pingRow(_ reply: Reply, elapsedNanos: UInt64) -> [String] {
        [reply.name, reply.id.short, count(reply.json["clock"]), millis(elapsedNanos)]
    }

    package static let membersHeader = ["NAME", "STATUS", "ADDRESS", "INCARNATION", "CLOCK", "LAST HEARD", "TAGS"]

    /// The rows of a `members` body (its `members` array; none when missing or not an array).
    package static func memberRows(_ body: JSON) -> [[String]] {
        (body["members"]?.arrayValue ?? []).map { row in
            [cell(row["name"]), cell(row["status"]), cell(row["address"]), count(row["incarnation"]), count(row["clock"]),
             count(row["last_heard_ms"]) + " ms", tags(row["tags"])]
        }
    }

    /// A member's tags as `key=value,…` in key order; "-" for none.
    package static func tags(_ value: JSON?) -> String {
        let tags = MemberTags(json: value)
        return tags.isEmpty ? "-" : Escape.display(tags.description)
    }

    /// One `stats` document: the agent's name, then a field/value table.
    package static func stats(_ document: JSON) -> String {
        guard case .object(let pairs) = document else { return Escape.display(document.plain) }
        return cell(document["name"]) + "\n" + table(["  FIELD", "VALUE"], pairs.map { ["  " + $0.0, $0.1.plain] })
    }

    package static let clockHeader = ["NAME", "CLOCK", "INCARNATION"]

    package static func clockRow(_ body: JSON) -> [String] {
        [cell(body["name"]), count(body["clock"]), count(body["incarnation"])]
    }

    /// A `leader`/`elect` body as "leader NAME, term N".
    package static func leader(_ body: JSON) -> String {
        let leader = body["leader"].flatMap { $0 == .null ? nil : $0 }
        return "leader \(leader.map { cell($0) } ?? "none"), term \(count(body["term"] ?? .int(0)))"
    }

    /// One `watch` event as a line; nil for the stream's "watching" greeting.
    package static func watchLine(_ event: JSON) -> String? {
        if event["event"]?.stringValue == "watching" { return nil }
        guard case .object(let pairs) = event else { return "\(timestamp(millis: nil))  ?  \(Escape.display(event.plain))" }
        let rest = pairs.filter { !["time_ms", "source", "event"].contains($0.0) }.map { "\($0.0)=\($0.1.plain)" }
        return Escape.display("\(timestamp(millis: event["time_ms"]))  \(event["source"]?.plain ?? "?")  \(event["event"]?.plain ?? "?")  "
            + rest.joined(separator: " "))
    }

    package static let revokedHeader = "REVOKED AT (UTC)          ID"

    /// One revoked id as a line: time first (fixed width), so that pages print as they come.
    package static func revokedLine(_ item: JSON) -> String {
        "\(timestamp(millis: item["revoked_at_ms"]))  \(cell(item["id"]))"
    }

    /// The `stored` total of `revoke` replies, per agent, without overflow (a forged reply may say
    /// anything): nil when a value is not a count.
    package static func addStored(_ total: UInt64?, _ body: JSON) -> UInt64? {
        guard let total, let stored = (body["stored"] ?? .int(0)).uint64Value else { return nil }
        let (sum, overflow) = total.addingReportingOverflow(stored)
        return overflow ? nil : sum
    }

    /// Counters per agent between two `top` rounds.
    package typealias Traffic = [String: (inCount: UInt64?, outCount: UInt64?)]

    package static let topHeader = ["AGENT", "ALIVE", "SUSPECT", "DEAD", "LEFT", "CLOCK", "INC", "REVOKED", "DGRAMS IN/OUT PER S", "RSS"]

    /// `top`'s agent rows from `stats` documents, with datagram rates against `previous`
    /// (replaced by this round's counters, so it holds only agents that answered). A counter
    /// that is unknown or went back (a restart) shows "?".
    package static func topRows(_ stats: [JSON], previous: inout Traffic) -> [[String]] {
        var current: Traffic = [:]
        defer { previous = current }
        return stats.map { document in
            let name = document["name"]?.stringValue ?? "?"
            let now = (inCount: document["datagrams_in"]?.uint64Value, outCount: document["datagrams_out"]?.uint64Value)
            func rate(_ new: UInt64?, _ old: UInt64??) -> String {
                guard let old else { return "-" }
                guard let new, let old, new >= old else { return unknown }
                return String(new - old)
            }
            let last = previous[name]
            let traffic = last == nil ? "-" : rate(now.inCount, last?.inCount) + "/" + rate(now.outCount, last?.outCount)
            current[name] = now
            let members = document["members"]
            let rss = document["resident_bytes"]?.uint64Value.map { String($0 / 1_048_576) + " MB" } ?? unknown
            return [cell(document["name"]), count(members?["alive"]), count(members?["suspect"]), count(members?["dead"]),
                    count(members?["left"]), count(document["clock"]), count(document["incarnation"]), count(document["revoked"]), traffic, rss]
        }
    }

    /// `top`'s leaders line from the first agent's `leaders` object; nil when there are none.
    package static func leadersLine(_ document: JSON) -> String? {
        guard case .object(let leaders)? = document["leaders"], !leaders.isEmpty else { return nil }
        return "leaders: " + leaders.map { Escape.display("\($0.0)=\($0.1.plain)") }.joined(separator: "  ")
    }

    /// "incomplete reply from X: N of M pages missing", one line per partial reply.
    package static func incomplete(_ partial: [RequestProgress.Partial]) -> [String] {
        partial.map { part in
            let missing = part.pageCount >= part.received ? part.pageCount - part.received : 0
            return "incomplete reply from \(Escape.display(part.name)): \(missing) of \(part.pageCount) pages missing"
        }
    }
}
