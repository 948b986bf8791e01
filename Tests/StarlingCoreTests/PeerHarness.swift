import StarlingCore
import XCTest

/// Drives one ``Peer`` with an injected clock and crafted datagrams from fake senders.
///
/// Protocol version 2 has no heartbeat: a fake member proves itself alive with any datagram
/// (``ping(from:name:incarnation:gossip:probeID:port:)``) and stays alive by answering the
/// peer's PINGs (``advance(_:silent:)``).
struct PeerHarness {
    var peer: Peer
    var now: UInt64 = 1_000_000_000
    var sent: [(Message, Destination)] = []
    var events: [PeerEvent] = []
    var codec: Codec
    var sequences: [NodeID: UInt64] = [:]
    /// Fake members by the port they talk from (each should use its own port).
    var fakes: [UInt16: (id: NodeID, name: String)] = [:]

    static let ms: UInt64 = 1_000_000
    static let loopback: UInt32 = 0x7F00_0001

    /// A peer started and run 300 ms, its first announcements over: the start of most tests.
    static func started(_ configure: (inout PeerConfig) -> Void = { _ in }) -> PeerHarness {
        var h = PeerHarness(configure: configure)
        h.start()
        h.advance(300 * ms)
        return h
    }

    init(name: String = "me", configure: (inout PeerConfig) -> Void = { _ in }) {
        var config = PeerConfig(name: name, id: NodeID(high: 0x5000, low: 1))
        config.replyPort = 9000
        // The rules are tested at round numbers (T = 200 ms, ping timeout 50 ms), whatever the
        // defaults an agent uses.
        config.protocolPeriod = 200 * Self.ms
        config.pingTimeout = 50 * Self.ms
        configure(&config)
        codec = Codec(keys: config.keys)
        peer = Peer(config: config)
    }

    var time: Now { Now(nanos: now, wallMillis: 1_800_000_000_000 + now / 1_000_000) }

    mutating func record(_ actions: [Action]) {
        for action in actions {
            switch action {
            case .send(let bytes, let destination):
                // Whatever a peer sends must be a datagram it would itself accept (issue 14 item 6).
                guard let message = try? codec.decode(bytes) else {
                    XCTFail("the peer sent a datagram it cannot decode (\(bytes.count) bytes)")
                    continue
                }
                sent.append((message, destination))
            case .emit(let event): events.append(event)
            default: break
            }
        }
        for (reason, count) in peer.counters.drops where reason.hasPrefix("encode_") {
            XCTFail("the peer failed to encode \(count) datagram(s): \(reason)")
        }
    }

    mutating func start() { record(peer.start(now: time)) }

    /// Advances the clock, running every timer that falls due on the way.
    mutating func advance(_ nanos: UInt64) {
        let end = now + nanos
        var spins = 0
        while peer.nextDeadline <= end {
            now = max(now, peer.nextDeadline)
            record(peer.onTick(now: time))
            guard !spinning(&spins) else { break }
        }
        now = end
    }

    /// A tick that leaves its own deadline in the past would make a real agent spin: fail.
    private func spinning(_ spins: inout Int) -> Bool {
        spins = peer.nextDeadline <= now ? spins + 1 : 0
        guard spins > 1_000 else { return false }
        XCTFail("the peer's next deadline stays at \(peer.nextDeadline) ≤ now (\(now)) after a tick")
        return true
    }

    /// Advances the clock like ``advance(_:)``; every fake member not in `silent` answers the
    /// PINGs sent to it at once, as a live member would.
    mutating func advance(_ nanos: UInt64, silent: Set<NodeID>) {
        let end = now + nanos
        var spins = 0
        while peer.nextDeadline <= end {
            now = max(now, peer.nextDeadline)
            let mark = sent.count
            record(peer.onTick(now: time))
            answerPings(since: mark, silent: silent)
            guard !spinning(&spins) else { break }
        }
        now = end
    }

    /// Fake members answer what was sent to them since `mark` as live members would (those in
    /// `silent` say nothing): a PING with an ACK; a PING_REQ with the target's ACK relayed, or a
    /// NACK when the target is silent.
    mutating func answerPings(since mark: Int, silent: Set<NodeID> = []) {
        for (message, destination) in Array(sent[mark...]) {
            guard case .peer(let endpoint) = destination, let fake = fakes[endpoint.port], !silent.contains(fake.id) else { continue }
            switch message.payload {
            case .ping(let ping) where ping.target == fake.id:
                receive(.ack(Ping(probeID: ping.probeID, target: fake.id, revoked: peer.revoked.digest)), from: fake.id, name: fake.name, port: endpoint.port)
            case .pingRequest(let request):
                let answer: Payload = silent.contains(request.target) ? .nack(request)
                    : .ack(Ping(probeID: request.probeID, target: request.target, revoked: peer.revoked.digest))
                receive(answer, from: fake.id, name: fake.name, port: endpoint.port)
            default: break
            }
        }
    }

    /// Delivers a datagram from a fake peer.
    mutating func receive(_ payload: Payload, from id: NodeID, name: String, incarnation: UInt32 = 0, stamp: UInt64 = 1, port: UInt16 = 9100,
                          address: UInt32 = 0x7F00_0001, ip: IPAddress? = nil, extensions: [Extension] = []) {
        let sequence = (sequences[id] ?? 0) + 1
        sequences[id] = sequence
        let header = Header(sequence: sequence, stamp: stamp, sender: id, incarnation: incarnation, replyPort: port,
            cluster: peer.config.cluster, name: name)
        let bytes = try! codec.encode(Message(header: header, payload: payload, extensions: extensions))
        record(peer.onDatagram(bytes, from: Endpoint(ip: ip ?? IPAddress(ipv4: address), port: port), now: time))
    }

    /// A PING from a fake member (it proves the member alive and carries `gossip` piggybacked).
    mutating func ping(from id: NodeID, name: String, incarnation: UInt32 = 0, gossip: [MemberEntry] = [], probeID: UInt32 = 1, port: UInt16 = 9100) {
        receive(.ping(Ping(probeID: probeID, target: peer.config.id, revoked: peer.revoked.digest, piggyback: gossip)), from: id, name: name, incarnation: incarnation, port: port)
    }

    /// Fake members that join by pinging the peer, each from its own port (9100 + index · 10).
    mutating func join(_ count: Int, high: UInt64 = 0x900) -> [NodeID] {
        (0..<count).map { index in
            let id = NodeID(high: high, low: UInt64(index))
            let port = UInt16(9100 + index * 10)
            fakes[port] = (id, "f\(index)")
            ping(from: id, name: "f\(index)", port: port)
            return id
        }
    }

    func port(of id: NodeID) -> UInt16 { fakes.first { $0.value.id == id }?.key ?? 9100 }
    func name(of id: NodeID) -> String { fakes[port(of: id)]?.name ?? "?" }

    /// A member entry as the fakes would gossip it.
    func entry(_ id: NodeID, _ status: MemberStatus, _ incarnation: UInt32 = 0) -> MemberEntry {
        MemberEntry(id: id, incarnation: incarnation, status: status, endpoint: Endpoint(address: Self.loopback, port: port(of: id)), name: name(of: id))
    }

    /// A CHANGE multicast by a fake member.
    mutating func change(_ entries: [MemberEntry], from id: NodeID) {
        receive(.change(entries), from: id, name: name(of: id), port: port(of: id))
    }

    func sentPayloads() -> [Payload] { sent.map(\.0.payload) }

    /// The HELLOs sent, alone or carried by an ANNOUNCE (§6.3.1), in order.
    func sentHellos() -> [Hello] {
        sent.compactMap { message, _ in
            if case .hello(let hello) = message.payload { hello } else { message.carriedHello }
        }
    }

    mutating func clearSent() { sent.removeAll() }

    /// The PINGs sent (own probes, relays, witness pings).
    var pings: [Ping] { sent.compactMap { if case .ping(let ping) = $0.0.payload { ping } else { nil } } }
    var acks: [(Ping, Destination)] { sent.compactMap { if case .ack(let ack) = $0.0.payload { (ack, $0.1) } else { nil } } }
    var pingRequests: [(Probe, Destination)] { sent.compactMap { if case .pingRequest(let probe) = $0.0.payload { (probe, $0.1) } else { nil } } }
    var nacks: [(Probe, Destination)] { sent.compactMap { if case .nack(let probe) = $0.0.payload { (probe, $0.1) } else { nil } } }
    /// The CHANGEs sent, with where they went.
    var changes: [([MemberEntry], Destination)] { sent.compactMap { if case .change(let entries) = $0.0.payload { (entries, $0.1) } else { nil } } }

    func statusChanges(to status: MemberStatus) -> [String] {
        events.compactMap { if case .statusChanged(let name, _, _, let to) = $0, to == status { name } else { nil } }
    }
}
