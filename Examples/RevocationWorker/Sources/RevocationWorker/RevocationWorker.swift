import Glibc
import Starling

/// `revocation-worker NAME COUNT [GROUP-PORT]`: works through tasks `task-1` ... `task-COUNT`,
/// one every 100 ms, and skips every task whose id was revoked (by `starling revoke ID`, by
/// another agent, or before this worker started: mingle brings the cluster's revoked ids).
@main
struct RevocationWorker {
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard (2...3).contains(arguments.count), let count = Int(arguments[1]), (1...100_000).contains(count) else { usage() }
        var configuration = Configuration.loopback(name: arguments[0])
        if arguments.count == 3 {
            guard let port = UInt16(arguments[2]), port > 0 else { usage() }
            configuration.group = Configuration.defaultGroup.with(port: port)
        }
        configuration.logLevel = .warning
        let agent: Agent
        do {
            agent = try Agent(configuration)
        } catch {
            say("revocation-worker: \(error)", to: 2)
            exit(2)
        }
        let events = agent.events
        let running = Task { try await agent.run(handlingSignals: true) }
        Task {
            for await event in events {
                if case .revoked(let ids, let by) = event { say("revoked by \(by): \(ids.joined(separator: " "))") }
            }
        }
        while !agent.isSynced && !agent.isFinished { try? await Task.sleep(for: .milliseconds(10)) }
        say("ready")
        for number in 1...count where !agent.isFinished {
            let task = "task-\(number)"
            say(agent.isRevoked(task) ? "skipped \(task) (revoked)" : "done \(task)")
            try? await Task.sleep(for: .milliseconds(100))
        }
        agent.shutdown()
        _ = try? await running.value
    }

    static func usage() -> Never {
        say("usage: revocation-worker NAME COUNT [GROUP-PORT]", to: 2)
        exit(2)
    }
}

/// Writes one line at once (unbuffered: it shows up at once in a file or a pipe too).
func say(_ text: String, to descriptor: Int32 = 1) {
    var line = text + "\n"
    line.withUTF8 { bytes in _ = write(descriptor, bytes.baseAddress, bytes.count) }
}
