@_spi(Testing) import Starling
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
        var previous: Display.Traffic = [:]
        for round in 0..<rounds {
            let started = System.now().nanos
            let result = client.client.request("stats", options: RequestOptions(idleTimeout: .millis(150), deadline: .millis(800)))
            let responders = client.client.responders
            let byName = result.replies.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
            let stats = byName.map(\.json)
            var lines: [String] = []
            lines.append("starling top — group \(client.client.group) — \(stats.count) agents answered — \(Logger.timestamp(System.wallMicros()))")
            lines.append("")
            lines.append(Output.table(Display.topHeader, Display.topRows(stats, previous: &previous)))
            if let leaders = stats.first.flatMap(Display.leadersLine) {
                lines.append("")
                lines.append(leaders)
            }
            if let first = byName.first {
                // The first agent's view, asked of it alone by unicast.
                let view = client.client.request("members", target: Glob.isLiteral(first.name) ? first.name : "", to: responders[first.id],
                    options: RequestOptions(expected: 1, idleTimeout: .millis(150), deadline: .millis(500)))
                if let body = view.replies.first?.json {
                    lines.append("")
                    lines.append("members as \(Escape.display(first.name)) sees them:")
                    lines.append(Output.table(Display.membersHeader, Display.memberRows(body)))
                }
            }
            if let session {
                session.draw(lines)
            } else {
                Output.line(lines.joined(separator: "\n"))
                Output.line()
            }
            if round == rounds - 1 { break }
            let spent = System.now().nanos &- started
            let wait = spent < .millis(1_000) ? .millis(1_000) - spent : 0
            if let session { if session.waitForQuit(nanos: wait) { break } } else { System.sleep(millis: wait / 1_000_000) }
        }
        return 0
    }
}
