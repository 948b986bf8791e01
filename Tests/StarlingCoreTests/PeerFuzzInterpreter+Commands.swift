// Steps of the stateful Peer fuzz target that call the public API (elect, revoke, request),
// restart a peer from its persisted state, and spray many datagrams to probe table bounds.
#if canImport(StarlingCore)
@testable import StarlingCore
#endif

extension PeerFuzzInterpreter {
    mutating func elect(_ input: inout FuzzInput, slot: Int) {
        let topic = input.below(8) == 0 ? String(repeating: "t", count: 65) : topic(&input)
        step = "elect \(Array(topic.utf8).prefix(8))"
        absorb(slots[slot].peer.elect(topic, now: time), from: slot)
    }

    /// Revokes ids through the API in request-sized batches, as `Agent.revoke` does; every id of
    /// a valid length must then be held with its very bytes (issue 14 item 9: NFC ≠ NFD).
    mutating func revoke(_ input: inout FuzzInput, slot: Int) {
        step = "revoke"
        var ids: [String] = []
        for _ in 0..<input.pick([1, 2, 4, 80]) {
            ids.append(input.below(8) == 0 ? input.pick(["", String(repeating: "r", count: 129)]) : revokedID(&input))
        }
        for batch in slots[slot].peer.requestBatches(ids, command: "revoke") {
            let (_, actions) = slots[slot].peer.revoke(batch, options: options(&input), now: time)
            absorb(actions, from: slot)
        }
        var peer = slots[slot].peer
        guard peer.revoked.count < peer.config.revokedMaxCount - 1_000 else { return }
        let held = Set(peer.revokedEntries().map { Array($0.id.utf8) })
        if let lost = ids.first(where: { Limits.revokedIDBytes.contains($0.utf8.count) && !held.contains(Array($0.utf8)) }) {
            fail("revoke_lost_bytes: peer \(slot) does not hold revoked id \(Array(lost.utf8)) as sent")
        }
    }

    mutating func request(_ input: inout FuzzInput, slot: Int) {
        let request = controlRequest(&input)
        step = "request \(request.command)"
        let to: Endpoint? = input.below(3) == 0 ? endpoint(&input) : nil
        let batches = slots[slot].peer.requestBatches(request.args, command: request.command, target: request.target)
        let (_, actions) = slots[slot].peer.request(request.command, args: batches.first ?? [], target: request.target, to: to,
            options: options(&input), now: time)
        absorb(actions, from: slot)
    }

    /// A change of tags (issue 18): the peer holds them at once and its incarnation never falls.
    mutating func setTags(_ input: inout FuzzInput, slot: Int) {
        let tags = input.pick(FuzzPools.tags)
        step = "set tags \(tags.encodedSize) bytes"
        absorb(slots[slot].peer.setTags(tags, now: time), from: slot)
        if slots[slot].peer.tags != tags { fail("set_tags: peer \(slot) does not hold the tags it was given") }
        checkAll()
    }

    /// A reload's key rotation (issue 20): only from keys to keys; the peer then holds exactly
    /// the new list, and it never turns authentication on or off.
    mutating func rotateKeys(_ input: inout FuzzInput, slot: Int) {
        let keys = (0..<input.pick([0, 1, 2, 3])).map { _ in input.pick([FuzzPools.key, FuzzPools.otherKey]) }
        step = "rotate keys to \(keys.count)"
        let wasKeyed = !slots[slot].peer.config.keys.isEmpty
        let rotated = slots[slot].peer.rotateKeys(keys)
        if rotated != (wasKeyed && !keys.isEmpty) {
            fail("rotate_keys: peer \(slot) keyed \(wasKeyed) to \(keys.count) keys answered \(rotated)")
        } else if rotated, slots[slot].peer.config.keys != keys {
            fail("rotate_keys: peer \(slot) holds other keys than it was given")
        } else if !rotated, slots[slot].peer.config.keys.isEmpty == wasKeyed {
            fail("rotate_keys: a refused rotation changed whether peer \(slot) authenticates")
        }
        checkAll()
    }

    /// Request options an embedder or the CLI could pass (durations within a day).
    func options(_ input: inout FuzzInput) -> RequestOptions {
        var options = RequestOptions()
        options.limit = input.pick([nil, 0, 1, 3])
        options.expected = input.pick([nil, 0, 1, 2, 100])
        options.stream = input.below(4) == 0
        options.idleTimeout = .millis(input.pick([0, 1, 250, 2_000]))
        options.deadline = .millis(input.pick([0, 40, 2_000, 86_400_000]))
        return options
    }

    /// A restart: same name and settings, a new boot id, the persisted clock and revoked set —
    /// or a clock file holding any number (issue 14 item 3: a clock of 2^64−1 must not wrap).
    mutating func restart(_ input: inout FuzzInput, slot: Int) {
        step = "restart"
        var old = slots[slot].peer
        absorb(old.stop(now: time), from: slot)
        slots[slot].restarts += 1
        var config = old.config
        config.id = NodeID(high: 0x5000, low: UInt64(slot + 1) + 16 * slots[slot].restarts)
        let clock = input.below(4) == 0 ? input.integer(UInt64.self) : old.clock.value
        slots[slot].peer = Peer(config: config, clock: clock, revoked: old.revokedEntries(), nowMillis: wallMillis)
        _ = slots[slot].peer.register(commands: ["work"])
        // A stopped peer answers its old requests with nothing; the new one never saw them.
        for command in slots[slot].commands where !slots[slot].peer.answer(command, status: .ok, body: "{}", now: time).isEmpty {
            fail("command_after_restart: peer \(slot) answered a request of its previous run")
        }
        slots[slot].commands = []
        slots[slot].lastClock = slots[slot].peer.clock.value
        slots[slot].lastSequence = 0
        slots[slot].lastIncarnation = 0
        slots[slot].terms = [:]
        slots[slot].windows = [:]
        slots[slot].unmodelled = []
        slots[slot].replayModelOff = false
        slots[slot].inbox = []
        absorb(slots[slot].peer.start(now: time), from: slot)
    }

    /// Many datagrams built from one template, each varied (new sender, name, topic, request id,
    /// source port): what a flood of spoofed members, topics, watchers or requests does to the
    /// tables the invariants bound (issue 14 items 11–13).
    mutating func spray(_ input: inout FuzzInput, to slot: Int) {
        guard let (template, _) = structured(&input, for: slot) else { return }
        // Mostly small: sprays are slow (before issue 14, 4,096 candidacies for new topics took seconds).
        let count = min(input.pick([4, 16, 64, 256, 4, 16, 64, 1_024]), FuzzBounds.sprayBudget - sprayed)
        let vary = input.byte()
        step = "spray \(count) \(template.payload.type.name) vary \(vary)"
        sprayed += count
        let codec = slots[slot].codec
        let base = UInt64(sprayed) << 20
        for index in 0..<count where report.violation == nil {
            var message = template
            let serial = UInt32(truncatingIfNeeded: index)
            if vary & 1 != 0 { message.header.sender = NodeID(high: 0x5B00, low: base + UInt64(index)) }
            if vary & 2 != 0 { message.header.name = "s\(base + UInt64(index))" }
            message.header.sequence = nextSequence(message.header.sender)
            switch message.payload {
            case .candidacy(var candidacy) where vary & 4 != 0:
                candidacy.topic = "t\(index)"
                message.payload = .candidacy(candidacy)
            case .leader(var leader) where vary & 4 != 0:
                leader.topic = "t\(index)"
                message.payload = .leader(leader)
            case .controlRequest(var request) where vary & 8 != 0:
                request.requestID = serial
                if vary & 4 != 0 { request.args = ["t\(index)"] }
                message.payload = .controlRequest(request)
            case .ping(var ping) where vary & 8 != 0:
                ping.probeID = serial
                message.payload = .ping(ping)
            case .pingRequest(var probe) where vary & 8 != 0:
                // Many members to probe for others: the relay table's bound (§6.6).
                probe.probeID = serial
                message.payload = .pingRequest(probe)
            default:
                break
            }
            if vary & 16 != 0 { message.header.replyPort = UInt16(truncatingIfNeeded: 10_000 + index) }
            guard let bytes = Self.encode(message, with: codec) else { return }
            let source = Endpoint(ip: loopback, port: message.header.replyPort)
            quickSends = index % 16 != 15 && index != count - 1
            deliver(bytes, from: source, to: slot, mustDrop: mustDrop(message, at: slot))
            quickSends = false
            if index % 256 == 255 { check(slot) }
        }
    }
}
