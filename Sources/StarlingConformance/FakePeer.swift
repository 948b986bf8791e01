import Starling
import StarlingCore
import StarlingPOSIX

/// A fake peer on the wire: it writes its own datagrams (with the shared codec) and reads the
/// target's, both from the group and on its unicast socket. While it reads, it answers the
/// target's PINGs as a member would (Protocol.md §6.1.5), so that it stays alive.
final class FakePeer {
    let codec: Codec
    let cluster: String
    let group: Endpoint
    let unicast: UDPSocket
    let listener: UDPSocket
    var id: NodeID
    var name: String
    var sequence: UInt64 = 0
    var stamp: UInt64 = 1
    var incarnation: UInt32 = 0
    /// The agent under test: (unicast endpoint, node id), found from its ANNOUNCE, its answer to
    /// ours (MEMBERS) or its PINGs.
    var target: Endpoint?
    var targetID: NodeID?
    var targetName: String?
    var buffer = [UInt8](repeating: 0, count: 2048)
    /// Answer the target's PINGs while reading (off for a case that wants to see them unanswered).
    var answersPings = true

    init(interface: Interface, group: Endpoint, cluster: String, keys: [AuthKey], name: String) throws {
        codec = Codec(keys: keys)
        self.cluster = cluster
        self.group = group
        unicast = try UDPSocket.unicast(on: interface, port: 0)
        listener = try UDPSocket.multicast(group: group, on: interface)
        var rng = SplitMix64(seed: System.randomUInt64())
        id = NodeID.random(using: &rng)
        self.name = name
    }

    func header(stamp explicit: UInt64? = nil) -> Header {
        sequence += 1
        stamp = explicit ?? stamp + 1
        return Header(sequence: sequence, stamp: stamp, sender: id, incarnation: incarnation, replyPort: unicast.local.port, cluster: cluster, name: name)
    }

    func encode(_ payload: Payload, stamp: UInt64? = nil, extensions: [Extension] = []) -> [UInt8] {
        (try? codec.encode(Message(header: header(stamp: stamp), payload: payload, extensions: extensions))) ?? []
    }

    func sendRaw(_ bytes: [UInt8], to destination: Endpoint? = nil) {
        _ = try? unicast.send(bytes, to: destination ?? target ?? group)
    }

    func send(_ payload: Payload, to destination: Endpoint? = nil, stamp: UInt64? = nil) {
        sendRaw(encode(payload, stamp: stamp), to: destination)
    }

    func toGroup(_ payload: Payload, stamp: UInt64? = nil) { sendRaw(encode(payload, stamp: stamp), to: group) }

    /// A received datagram from the target, and whether it came to our unicast socket.
    struct Received {
        var message: Message
        var unicast: Bool
        var at: UInt64
    }

    /// Reads datagrams until `match` accepts one from the target, or `millis` pass.
    func expect(_ millis: UInt64, _ match: (Received) -> Bool) -> Received? {
        let deadline = System.now().nanos + .millis(millis)
        // One reading of the clock per turn: a second one can pass the deadline, and the
        // subtraction trapped (the suite died of SIGILL once in CI's conformance test).
        while case let now = System.now().nanos, now < deadline {
            let ready = (try? Poller.wait([unicast.descriptor, listener.descriptor], timeoutNanos: deadline - now)) ?? []
            for socket in [unicast, listener] where ready.contains(socket.descriptor) {
                while let (count, source) = (buffer.withUnsafeMutableBytes { try? socket.receive(into: $0) }) ?? nil {
                    guard let message = try? codec.decode(Array(buffer[0..<min(count, buffer.count)])), message.header.sender != id else { continue }
                    if targetID == nil, Self.revealsTarget(message.payload, me: id) {
                        targetID = message.header.sender
                        targetName = message.header.name
                        target = target ?? source.with(port: message.header.replyPort)
                    }
                    guard message.header.sender == targetID else { continue }
                    if answersPings, case .ping(let ping) = message.payload, ping.target == id {
                        send(.ack(Ping(probeID: ping.probeID, target: id, revoked: .empty)),
                            to: source.with(port: message.header.replyPort))
                    }
                    let received = Received(message: message, unicast: socket === unicast, at: System.now().nanos)
                    if match(received) { return received }
                }
            }
        }
        return nil
    }

    /// What an agent sends unasked to a newcomer that announced itself: its own ANNOUNCE, the
    /// answer to ours (MEMBERS), or a PING to us (version 2 has no heartbeats to listen for).
    static func revealsTarget(_ payload: Payload, me: NodeID) -> Bool {
        switch payload {
        case .announce, .members: true
        case .ping(let ping): ping.target == me
        default: false
        }
    }

    /// Arrives (ANNOUNCE to the group, and to the target when its address is known).
    func announce() {
        let payload = Payload.announce(Announcement(memberCount: 1, revoked: .empty))
        toGroup(payload)
        if let target { send(payload, to: target) }
    }

    /// Proves this fake peer alive to the target (any datagram does, §6.1.2): a PING, which the
    /// target answers with an ACK.
    func ping(_ probeID: UInt32 = 1) {
        guard let targetID else { return }
        send(.ping(Ping(probeID: probeID, target: targetID, revoked: .empty)))
    }

    /// Comes back after the target may have declared this fake peer dead (it answers PINGs only
    /// while it reads): a higher incarnation outbids the verdict (§6.1.3).
    func revive() {
        incarnation += 1
        ping()
    }

    /// Empties both sockets.
    func drain(_ millis: UInt64 = 20) { _ = expect(millis) { _ in false } }

    /// A CONTROL_REQUEST issued now (`issued_ms` from this host's wall clock, §3.5).
    func request(_ requestID: UInt32, _ command: String, target: String = "", args: [String] = []) -> Payload {
        .controlRequest(ControlRequest(requestID: requestID, issuedMillis: System.now().wallMillis, command: command, target: target, args: args))
    }

    /// Sends a control request to the target and returns the reassembled JSON body. A request
    /// unanswered within `millis` is sent again, the same request id up to `attempts` times:
    /// the target runs a request once and repeats its reply (§3.5.1), so a datagram lost on a
    /// loaded host costs a retry, not a failed case.
    func control(_ command: String, _ args: [String] = [], millis: UInt64 = 1_000, attempts: Int = 3) -> (ControlStatus, JSON)? {
        let requestID = UInt32(truncatingIfNeeded: System.randomUInt64())
        let payload = request(requestID, command, args: args)
        var pages: [UInt16: [UInt8]] = [:]
        var status = ControlStatus.ok
        var count: UInt16 = 1
        var complete = false
        for _ in 0..<max(1, attempts) where !complete {
            send(payload)
            complete = expect(millis) { received in
                guard case .controlReply(let reply) = received.message.payload, reply.requestID == requestID else { return false }
                pages[reply.page] = reply.body
                status = reply.status
                count = reply.pageCount
                return pages.count >= Int(count)
            } != nil
        }
        guard complete else { return nil }
        let body = (0..<count).flatMap { pages[$0] ?? [] }
        return (status, (try? JSON.parse(String(decoding: body, as: UTF8.self))) ?? .null)
    }

    func drops(_ reason: String) -> Double {
        control("stats")?.1["drops"]?[reason]?.numberValue ?? 0
    }
}
