import StarlingCore
import StarlingPOSIX

/// Memory under each bound's attack (issue 14): one in-process ``Peer`` per attack, fed forged
/// datagrams in virtual time until its table is at its bound, kept alive to the end so that
/// each resident-memory delta is new memory and not pages freed by the attack before it.
/// Reported per attack: the table's size at the end and the resident bytes it added.
enum AttackScenario {
    struct Target {
        var peer: Peer
        let codec: Codec
        var nanos: UInt64 = 1_000_000_000
        var sequence: UInt64 = 0

        init(keys: [AuthKey] = [], revoked: [RevokedEntry] = [], configure: (inout PeerConfig) -> Void = { _ in }) {
            var config = PeerConfig(name: "target", id: NodeID(high: 0xA77A, low: 1))
            config.keys = keys
            configure(&config)
            codec = Codec(keys: keys)
            peer = Peer(config: config, revoked: revoked, nowMillis: 1_800_000_000_000 + nanos / 1_000_000)
            _ = peer.start(now: now)
        }

        var now: Now { Now(nanos: nanos, wallMillis: 1_800_000_000_000 + nanos / 1_000_000) }

        /// Delivers a forged datagram and runs the timers that fall due on the way.
        mutating func deliver(_ payload: Payload, from sender: NodeID, name: String, port: UInt16 = 7000, address: UInt32 = 0x0A00_0001) {
            sequence += 1
            let header = Header(sequence: sequence, stamp: 1, sender: sender, incarnation: 0, replyPort: port,
                cluster: peer.config.cluster, name: name)
            guard let bytes = try? codec.encode(Message(header: header, payload: payload)) else { return }
            _ = peer.onDatagram(bytes, from: Endpoint(address: address, port: port), now: now)
        }

        mutating func advance(_ nanos: UInt64) {
            self.nanos += nanos
            if peer.nextDeadline <= self.nanos { _ = peer.onTick(now: now) }
        }
    }

    static func run(_ report: Report, quick: Bool) {
        var kept: [Target] = []
        let scale = quick ? 4 : 1
        func measure(_ name: String, _ what: String, _ attack: () -> (Target, Int)) {
            let before = System.residentBytes()
            let (target, size) = attack()
            let after = System.residentBytes()
            kept.append(target)
            report.add("attack", "\(name): \(what)", Double(size), "")
            report.add("attack", "\(name): resident added", Double(after &- min(after, before)) / 1_048_576, "MiB")
        }
        let announcement = Announcement(memberCount: 1, revoked: .empty)
        var rng = SplitMix64(seed: 14)

        measure("forged election topics (\(20_000 / scale))", "topics held") {
            var target = Target()
            let leader = NodeID(high: 0xBAD, low: 1)
            // Any datagram of a peer makes it a member: a PING, as a member would send.
            target.deliver(.ping(Ping(probeID: 1, target: target.peer.config.id, revoked: .empty)), from: leader, name: "fake-leader")
            for index in 0..<(20_000 / scale) {
                target.deliver(.leader(LeaderAnnouncement(term: 1, leader: leader, leaderStamp: 1, topic: "topic-\(index)", leaderName: "fake-leader")),
                    from: leader, name: "fake-leader")
            }
            return (target, target.peer.elections.count)
        }
        measure("watch requests from \(30_000 / scale) endpoints", "watchers held") {
            var target = Target()
            for index in 0..<(30_000 / scale) {
                let sender = NodeID(high: 0xCAFE, low: UInt64(index))
                target.deliver(.controlRequest(ControlRequest(requestID: UInt32(index), issuedMillis: target.now.wallMillis, command: "watch", target: "", args: [])),
                    from: sender, name: "cli", port: UInt16(1_024 + index % 60_000), address: 0x0A00_0000 | UInt32(index))
            }
            return (target, target.peer.stats(now: target.now)["control"]?["watchers"]?.numberValue.map { Int($0) } ?? -1)
        }
        measure("distinct requests (run-once table, \(60_000 / scale))", "entries held") {
            var target = Target()
            for index in 0..<(60_000 / scale) {
                target.deliver(.controlRequest(ControlRequest(requestID: UInt32(index), issuedMillis: target.now.wallMillis, command: "clock", target: "", args: [])),
                    from: NodeID(high: 0xF00D, low: UInt64(index)), name: "cli", address: 0x0A00_0000 | UInt32(index))
            }
            return (target, target.peer.stats(now: target.now)["control"]?["run_once"]?.numberValue.map { Int($0) } ?? -1)
        }
        measure("keyed senders (replay windows, \(20_000 / scale))", "windows forgotten") {
            var target = Target(keys: [AuthKey(Array(repeating: 5, count: 32))]) { $0.limits.admissionsPerSecond = 1_000_000; $0.limits.admissionBurst = 1_000_000 }
            for index in 0..<(20_000 / scale) {
                target.deliver(.ack(Ping(probeID: 1, target: NodeID(high: 1, low: 1), revoked: .empty)), from: NodeID(high: 0xBEEF, low: UInt64(index)), name: "s")
            }
            return (target, Int(target.peer.counters.drops["replay_windows_full"] ?? 0))
        }
        measure("revoked ids of 128 bytes dated far in the future (\(60_000 / scale))", "ids held") {
            // Merged as a pull or a state file would: the set's own bound and clamp apply.
            let entries = (0..<(60_000 / scale)).map {
                RevokedEntry(id: String(repeating: "r", count: 118) + String(1_000_000_000 + $0), revokedAtMillis: 1 << 62)
            }
            let target = Target(revoked: entries)
            return (target, target.peer.revoked.count)
        }
        // Last: its transient allocations would otherwise be reused by the smaller attacks.
        measure("forged members at 4,000/s for \(120 / scale) s", "largest view") {
            var target = Target()
            var largest = 0
            for index in 0..<(480_000 / scale) {
                target.deliver(.announce(announcement), from: NodeID.random(using: &rng), name: "forged-\(index)")
                target.advance(250_000)
                largest = max(largest, target.peer.members.count)
            }
            return (target, largest)
        }
        _ = kept.count
    }
}
