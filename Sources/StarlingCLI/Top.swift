import Starling
import StarlingCore
import StarlingPOSIX

/// `starling top`: a dashboard refreshed about once a second with plain ANSI escapes. When
/// stdout is not a terminal it prints plain tables instead.
enum Top {
    static func run(_ args: Arguments) throws(CLIError) -> Int32 {
        let client = try Client(args)
        let terminal = System.isTerminal(1)
        let session = terminal ? TerminalSession.enter() : nil
        defer { session?.leave() }
        let rounds = args.value("--timeout").map { _ in max(1, Int(client.timeout / 1_000_000_000)) } ?? Int.max
        var previous: [String: (UInt64, UInt64)] = [:]
        for round in 0..<rounds {
            let started = System.now().nanos
            let result = client.client.request("stats", options: RequestOptions(idleTimeout: .millis(150), deadline: .millis(800)))
            let stats = result.replies.map(\.json).sorted { ($0["name"]?.plain ?? "") < ($1["name"]?.plain ?? "") }
            var lines: [String] = []
            lines.append("starling top — group \(client.client.group) — \(stats.count) agents answered — \(Logger.timestamp(System.wallMicros()))")
            lines.append("")
            var rows: [[String]] = []
            for document in stats {
                let name = document["name"]?.plain ?? "?"
                let inCount = UInt64(document["datagrams_in"]?.numberValue ?? 0)
                let outCount = UInt64(document["datagrams_out"]?.numberValue ?? 0)
                let rate = previous[name].map { "\(inCount &- $0.0)/\(outCount &- $0.1)" } ?? "-"
                previous[name] = (inCount, outCount)
                let members = document["members"]
                rows.append([name, members?["alive"]?.plain ?? "-", members?["suspect"]?.plain ?? "-", members?["dead"]?.plain ?? "-",
                    members?["left"]?.plain ?? "-", document["clock"]?.plain ?? "-", document["incarnation"]?.plain ?? "-",
                    document["revoked"]?.plain ?? "-", rate,
                    String(Int((document["resident_bytes"]?.numberValue ?? 0) / 1_048_576)) + " MB"])
            }
            lines.append(Output.table(["AGENT", "ALIVE", "SUSPECT", "DEAD", "LEFT", "CLOCK", "INC", "REVOKED", "DGRAMS IN/OUT PER S", "RSS"], rows))
            if let first = stats.first, case .object(let leaders)? = first["leaders"], !leaders.isEmpty {
                lines.append("")
                lines.append("leaders: " + leaders.map { "\($0.0)=\($0.1.plain)" }.joined(separator: "  "))
            }
            if let first = result.replies.first {
                let view = client.client.request("members", target: first.name, options: RequestOptions(expected: 1, idleTimeout: .millis(150), deadline: .millis(500)))
                if let rowsJSON = view.replies.first?.json["members"]?.arrayValue {
                    lines.append("")
                    lines.append("members as \(first.name) sees them:")
                    lines.append(Output.table(["NAME", "STATUS", "ADDRESS", "INCARNATION", "CLOCK", "HEARTBEAT AGE"], rowsJSON.map {
                        [$0["name"]?.plain ?? "", $0["status"]?.plain ?? "", $0["address"]?.plain ?? "", $0["incarnation"]?.plain ?? "",
                         $0["clock"]?.plain ?? "", ($0["heartbeat_age_ms"]?.plain ?? "") + " ms"]
                    }))
                }
            }
            if let session {
                session.draw(lines)
            } else {
                Output.line(lines.joined(separator: "\n"))
                Output.line()
            }
            if round == rounds - 1 { break }
            let spent = System.now().nanos - started
            let wait = spent < .millis(1_000) ? .millis(1_000) - spent : 0
            if let session { if session.waitForQuit(nanos: wait) { break } } else { System.sleep(millis: wait / 1_000_000) }
        }
        return 0
    }
}
