import StarlingCore
import StarlingPOSIX

/// A requester that is not a member: what the `starling` CLI uses to talk to a cluster. It sends
/// CONTROL_REQUEST to the group (or one agent) from its own unicast socket and collects the
/// replies with the same core logic agents use. One thread uses a client at a time.
public final class ControlClient {
    public let group: Endpoint
    let socket: UDPSocket
    var core: Peer

    public init(interface: String = "lo", group: Endpoint = AgentConfiguration.defaultGroup, cluster: String = "starling", keys: [AuthKey] = []) throws(AgentError) {
        let resolved: Interface
        do { resolved = try Interface.resolve(interface) } catch { throw .interface(error) }
        do { socket = try UDPSocket.unicast(interface: resolved.address, port: 0) } catch { throw .socket(error) }
        self.group = group
        var rng = SplitMix64(seed: System.randomUInt64())
        var config = PeerConfig(name: "starling-cli-\(System.processID)", id: NodeID.random(using: &rng))
        config.cluster = cluster
        config.keys = keys
        config.replyPort = socket.local.port
        config.randomSeed = rng.next()
        core = Peer(config: config)
    }

    /// Sends `command` and blocks until the replies are in (see ``RequestOptions``). `onReply`
    /// sees each reply as it arrives and may return false to stop early.
    public func request(
        _ command: String, args: [String] = [], target: String = "", to: Endpoint? = nil,
        options: RequestOptions = RequestOptions(), onReply: (Reply) -> Bool = { _ in true }
    ) -> RequestResult {
        var replies: [Reply] = []
        let (requestID, first) = core.request(command, args: args, target: target, to: to, options: options, now: System.now())
        var pending = first
        var buffer = [UInt8](repeating: 0, count: 2048)
        while true {
            for action in pending {
                switch action {
                case .send(let bytes, let destination):
                    switch destination {
                    case .group: _ = try? socket.send(bytes, to: group)
                    case .peer(let endpoint): _ = try? socket.send(bytes, to: endpoint)
                    }
                case .emit(.reply(let id, let from, let node, let status, let body)) where id == requestID:
                    let reply = Reply(name: from, id: node, status: status, body: body)
                    replies.append(reply)
                    if !onReply(reply) {
                        core.cancelRequest(requestID)
                        return RequestResult(replies: replies, reason: .limit, expected: nil)
                    }
                case .emit(.requestFinished(let id, let reason, _, let expected)) where id == requestID:
                    return RequestResult(replies: replies, reason: reason, expected: expected)
                default:
                    break
                }
            }
            pending = []
            let deadline = core.nextDeadline
            let now = System.now().nanos
            let ready = (try? Poller.wait([socket.descriptor], timeoutNanos: deadline &- min(deadline, now))) ?? []
            if !ready.isEmpty {
                while let (count, source) = buffer.withUnsafeMutableBytes({ try? socket.receive(into: $0) }) ?? nil {
                    let length = min(count, buffer.count)
                    pending += buffer.withUnsafeBytes { core.onDatagram(UnsafeRawBufferPointer(rebasing: $0[0..<length]), from: source, now: System.now()) }
                }
            }
            pending += core.onTick(now: System.now())
        }
    }

    /// Groups of `args` that each fit one request (see ``Peer/requestBatches(_:command:target:)``).
    public func requestBatches(_ args: [String], command: String, target: String = "") -> [[String]] {
        core.requestBatches(args, command: command, target: target)
    }
}
