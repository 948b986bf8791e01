import StarlingCore
import StarlingPOSIX

/// A requester that is not a member: what the `starling` CLI uses to talk to a cluster. It sends
/// CONTROL_REQUEST to the group (or one agent) from its own unicast socket and collects the
/// replies with the same core logic agents use. One thread uses a client at a time.
package final class ControlClient {
    package let group: Endpoint
    let socket: UDPSocket
    var core: ControlRequester
    /// Where each agent of the last request answered from (agents reply from the unicast socket
    /// they take requests on): the next request can go to the same agent by unicast.
    package private(set) var responders: [NodeID: Endpoint] = [:]

    /// Asked of the kernel for the socket's receive buffer: a reply of hundreds of pages arrives
    /// in one burst (issue 14 item 26). Linux caps it at net.core.rmem_max.
    package static let receiveBufferRequest = 4 << 20
    /// The receive buffer the kernel granted (Linux reports twice the usable size).
    package var receiveBuffer: Int { socket.receiveBuffer }

    /// With `seeds`, requests to every agent go by unicast to each seed instead of the group
    /// (a cluster without multicast, such as IPv6 on `lo`).
    package init(interface: String = "lo", group: Endpoint = Configuration.defaultGroup, cluster: String = "starling", keys: [AuthKey] = [],
                 seeds: [Endpoint] = []) throws(AgentError) {
        let resolved: Interface
        do { resolved = try Interface.resolve(interface, family: group.ip.family) } catch { throw .interface(error) }
        do { socket = try UDPSocket.unicast(on: resolved, port: 0, receiveBuffer: Self.receiveBufferRequest) } catch { throw .socket(error) }
        self.group = group
        var rng = SplitMix64(seed: System.randomUInt64())
        var config = PeerConfig(name: "starling-cli-\(System.processID)", id: NodeID.random(using: &rng))
        config.cluster = cluster
        config.keys = keys
        config.replyPort = socket.local.port
        config.randomSeed = rng.next()
        config.multicast = seeds.isEmpty
        config.seeds = seeds
        core = ControlRequester(config: config)
    }

    /// Sends `command` and blocks until the replies are in (see ``RequestOptions``). `onReply`
    /// sees each reply as it arrives and may return false to stop early. Replies still missing
    /// pages when collection stops are in ``RequestResult/incomplete``.
    package func request(
        _ command: String, args: [String] = [], target: String = "", to: Endpoint? = nil,
        options: RequestOptions = RequestOptions(), onReply: (Reply) -> Bool = { _ in true }
    ) -> RequestResult {
        withoutActuallyEscaping(onReply) { onReply in
            let (requestID, first) = core.request(command, args: args, target: target, to: to, options: options, now: System.now())
            var shell = RequestShell(socket: socket, group: group, requestID: requestID, onReply: onReply)
            var pending = first
            responders = [:]
            // The core forgets a request when it finishes: keep its last progress to report.
            var progress = core.progress(ofRequest: requestID)
            var buffer = [UInt8](repeating: 0, count: 2048)
            while true {
                shell.perform(pending)
                if let end = shell.end {
                    if shell.declined {
                        progress = core.progress(ofRequest: requestID) ?? progress
                        core.cancelRequest(requestID)
                    }
                    return RequestResult(replies: shell.replies, reason: end.reason, expected: end.expected, incomplete: progress?.partial ?? [])
                }
                pending = []
                let deadline = core.nextDeadline
                let now = System.now().nanos
                let ready = (try? Poller.wait([socket.descriptor], timeoutNanos: deadline &- min(deadline, now))) ?? []
                if !ready.isEmpty {
                    while let (count, source) = buffer.withUnsafeMutableBytes({ try? socket.receive(into: $0) }) ?? nil {
                        let length = min(count, buffer.count)
                        let actions = buffer.withUnsafeBytes { core.onDatagram(UnsafeRawBufferPointer(rebasing: $0[0..<length]), from: source, now: System.now()) }
                        for case .emit(.reply(let id, _, let node, _, _)) in actions where id == requestID { responders[node] = source }
                        pending += actions
                    }
                    progress = core.progress(ofRequest: requestID) ?? progress
                }
                pending += core.onTick(now: System.now())
            }
        }
    }

    /// The client's meaning of each action for one request: sends go out on its socket; the
    /// request's replies are kept, and its end (or `onReply` declining more) ends the request:
    /// nothing after it is carried out.
    struct RequestShell: ActionShell {
        let socket: UDPSocket
        let group: Endpoint
        let requestID: UInt32
        let onReply: (Reply) -> Bool
        var replies: [Reply] = []
        var end: (reason: RequestEnd, expected: Int?)?
        /// `onReply` asked to stop: the core still collects the request until cancelled.
        var declined = false

        mutating func send(_ datagram: [UInt8], to destination: Destination) {
            guard end == nil else { return }
            _ = try? socket.send(datagram, to: destination.endpoint(group: group))
        }

        mutating func emit(_ event: PeerEvent) {
            guard end == nil else { return }
            if let (id, reply) = Reply.carried(by: event), id == requestID {
                replies.append(reply)
                if !onReply(reply) {
                    declined = true
                    end = (.limit, nil)
                }
            } else if case .requestFinished(let id, let reason, _, let expected) = event, id == requestID {
                end = (reason, expected)
            }
        }

        /// A requester is not a member: no command reaches it.
        mutating func shutdown(requestedBy requester: String) {}
        /// A client answers no commands; nothing asks it to reload.
        mutating func reload(requestedBy requester: String) {}
        mutating func run(_ command: CommandRequest) {}
    }

    /// The agents `target` names that one agent's view holds alive or suspect (itself included),
    /// by node id, with the endpoint each takes requests on; nil when no agent answered
    /// `members` in time. With them a request can be re-asked of exactly the silent agents
    /// (Protocol.md §6.5), as a member would.
    /// Views larger than this are not used to re-ask agents one by one (§6.5).
    package static let respondersLimit = 4_096

    package func liveResponders(target: String, options: RequestOptions) -> [NodeID: Endpoint]? {
        var asked = options
        asked.limit = 1
        asked.expected = nil
        guard let reply = request("members", options: asked).replies.first, reply.status == .ok,
              case .array(let rows)? = reply.json["members"] else { return nil }
        var found: [NodeID: Endpoint] = [:]
        for row in rows {
            guard let status = row["status"]?.stringValue, status == "alive" || status == "suspect",
                  let id = row["id"]?.stringValue.flatMap(NodeID.init(hex:)),
                  let address = row["address"]?.stringValue.flatMap({ Endpoint(parsing: $0) }),
                  Glob.matchesTarget(target, row["name"]?.stringValue ?? "", tags: MemberTags(json: row["tags"])) else { continue }
            found[id] = address
            // A forged reply must not make the client re-ask thousands of made-up addresses.
            if found.count > Self.respondersLimit { return nil }
        }
        return found.isEmpty ? nil : found
    }

    /// Groups of `args` that each fit one request (see ``Peer/requestBatches(_:command:target:)``).
    package func requestBatches(_ args: [String], command: String, target: String = "") -> [[String]] {
        core.requestBatches(args, command: command, target: target)
    }
}
