import Glibc
import Starling

/// `leader-job NAME [GROUP-PORT]`: joins the cluster on loopback and, while it leads topic
/// "jobs", prints a tick every 200 ms. Run three; kill the one that ticks and another takes
/// over once the others have found it dead and re-elected.
@main
struct LeaderJob {
    static let topic = "jobs"

    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard (1...2).contains(arguments.count) else { usage() }
        var configuration = Configuration.loopback(name: arguments[0])
        if arguments.count == 2 {
            guard let port = UInt16(arguments[1]), port > 0 else { usage() }
            configuration.group = Configuration.defaultGroup.with(port: port)
        }
        configuration.logLevel = .warning
        let agent: Agent
        do {
            agent = try Agent(configuration)
        } catch {
            say("leader-job: \(error)", to: 2)
            exit(2)
        }
        let events = agent.events
        let running = Task { try await agent.run(handlingSignals: true) }
        Task {
            for await event in events {
                if case .leaderChanged(let topic, let leadership) = event, topic.utf8.elementsEqual(Self.topic.utf8) {
                    say("\(agent.configuration.name): leader of \(topic) is \(leadership?.leader ?? "nobody")")
                }
            }
        }
        // Join the leadership the cluster has, or hold the first election.
        while !agent.isSynced && !agent.isFinished { try? await Task.sleep(for: .milliseconds(10)) }
        if agent.leader(of: topic) == nil { _ = try? await agent.elect(topic) }
        var tick = 0
        while !agent.isFinished {
            if agent.isLeader(of: topic) {
                tick += 1
                say("\(agent.configuration.name): tick \(tick)")
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        _ = try? await running.value
    }

    static func usage() -> Never {
        say("usage: leader-job NAME [GROUP-PORT]", to: 2)
        exit(2)
    }
}

/// Writes one line at once (unbuffered: it shows up at once in a file or a pipe too).
func say(_ text: String, to descriptor: Int32 = 1) {
    var line = text + "\n"
    line.withUTF8 { bytes in _ = write(descriptor, bytes.baseAddress, bytes.count) }
}
