import StarlingCore
import XCTest

/// Drives one ``Peer`` with an injected clock and crafted datagrams from fake senders.
struct PeerHarness {
    var peer: Peer
    var now: UInt64 = 1_000_000_000
    var sent: [(Message, Destination)] = []
    var events: [PeerEvent] = []
    let codec: Codec
    var sequences: [NodeID: UInt64] = [:]

    static let ms: UInt64 = 1_000_000

    init(name: String = "me", configure: (inout PeerConfig) -> Void = { _ in }) {
        var config = PeerConfig(name: name, id: NodeID(high: 0x5000, low: 1))
        config.replyPort = 9000
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
        while peer.nextDeadline <= end {
            now = max(now, peer.nextDeadline)
            record(peer.onTick(now: time))
        }
        now = end
    }

    /// Delivers a datagram from a fake peer.
    mutating func receive(_ payload: Payload, from id: NodeID, name: String, incarnation: UInt32 = 0, stamp: UInt64 = 1, port: UInt16 = 9100, address: UInt32 = 0x7F00_0001) {
        let sequence = (sequences[id] ?? 0) + 1
        sequences[id] = sequence
        let header = Header(sequence: sequence, stamp: stamp, sender: id, incarnation: incarnation, replyPort: port,
            cluster: peer.config.cluster, name: name)
        let bytes = try! codec.encode(Message(header: header, payload: payload))
        record(peer.onDatagram(bytes, from: Endpoint(address: address, port: port), now: time))
    }

    /// A PING from a fake member (it proves the member alive and carries `gossip` piggybacked).
    mutating func ping(from id: NodeID, name: String, incarnation: UInt32 = 0, gossip: [MemberEntry] = [], probeID: UInt32 = 1) {
        receive(.ping(Ping(probeID: probeID, target: peer.config.id, revoked: peer.revoked.digest, piggyback: gossip)), from: id, name: name, incarnation: incarnation)
    }

    func sentPayloads() -> [Payload] { sent.map(\.0.payload) }

    mutating func clearSent() { sent.removeAll() }

    func statusChanges(to status: MemberStatus) -> [String] {
        events.compactMap { if case .statusChanged(let name, _, _, let to) = $0, to == status { name } else { nil } }
    }
}
