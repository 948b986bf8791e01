// The stateful fuzz target for the Peer core (issue 14, "Tests and checks that must exist after
// this"). Fuzz bytes are a program: set up one or two peers, then steps that move time, tick,
// deliver structured or mutated datagrams, call the public API and restart peers. After every
// step the invariants below must hold; a trap in the core is the first thing it finds.
//
// Built two ways from the same files:
//   swift test --filter PeerFuzzCorpusTests     replays Tests/Fuzz/peer-corpus and peer-regressions
//   libFuzzer: see Tests/Fuzz/FuzzPeer.swift (compiled with the core as one module)
#if canImport(StarlingCore)
@testable import StarlingCore
#endif

/// Bounds no input may push a peer past: Protocol.md §6.6 (the peer's `config.limits` where it
/// has them), plus generous ceilings for tables §6.6 does not list.
enum FuzzBounds {
    static let watchers = 64
    static let electWaiters = 1_024
    static let requests = 1_024
    static let runOnce = 8_192
    static let pacedReplies = 1_024
    /// Tables bounded only through others (reaped and replaced ids).
    static let derivedTable = 4 * 16_384
    /// Bytes one datagram may make a peer send: one destination's answer burst (§6.6) plus
    /// 1 MiB of the peer's own traffic (beats, watch events, leader announcements).
    static let bytesPerDatagram = (4 << 20) + (1 << 20)
    /// Bytes any other call may make a peer send: the whole peer's answer burst plus 1 MiB.
    static let bytesPerCall = (16 << 20) + (1 << 20)
    /// Datagrams one input may spray at the peers (sprays probe the bounds above).
    static let sprayBudget = 12_000
    /// How far past the latest wall time seen a stored revoke time may lie (§6.3.4).
    static let revokedSkewMillis = RevokedSet.maxFutureSkewMillis
}

struct PeerFuzzInterpreter {
    /// One peer under test and what the invariants remember about it.
    struct Slot {
        var peer: Peer
        var endpoint: Endpoint
        var inbox: [([UInt8], Endpoint)] = []
        /// Requests for the registered command `work` (§3.5.3), answered at the next route.
        var commands: [CommandRequest] = []
        var lastClock: UInt64
        var lastIncarnation: UInt32 = 0
        var lastSequence: UInt64 = 0
        var terms: [ByteString: UInt64] = [:]
        var restarts: UInt64 = 0
        /// The replay-window model (PeerFuzzInterpreter+Replay.swift).
        var windows: [NodeID: FuzzReplayWindow] = [:]
        var unmodelled: Set<NodeID> = []
        var replayModelOff = false
        var codec: Codec { Codec(keys: peer.config.keys) }
    }

    /// What one run did, for tests that check the interpreter itself.
    struct Report {
        var violation: String?
        var steps = 0
        /// Datagrams the peers accepted past decoding, by type.
        var delivered: [MessageType: Int] = [:]
        /// The first few of them with the step that delivered each (1-based).
        var accepted: [(step: Int, type: MessageType)] = []
    }

    var slots: [Slot] = []
    /// The peers' own address: 127.0.0.1, or a link-local IPv6 address when the input picks an
    /// IPv6 cluster (issue 19: one cluster is one family, Protocol.md §2.5).
    var loopback = IPAddress(ipv4: 0x7F00_0001)
    var memory = FuzzMemory()
    var sequences: [NodeID: UInt64] = [:]
    var now: UInt64 = 1_000_000_000
    /// Wall clock = base + monotonic time + offset (NTP may step it either way).
    var wallOffset: Int64 = 0
    var sprayed = 0
    /// Set during sprays: most sends are only size-checked, not decoded (decoding every reply to
    /// a thousand datagrams made sprays the fuzzer's bottleneck).
    var quickSends = false
    /// The latest wall-clock time the peers were given (the wall clock may step back).
    var latestWall: UInt64 = 0
    var report = Report()
    var step = "setup"
    /// Invariant names not to report (to hunt for other failures while a known one is unfixed).
    var ignoring: Set<String> = []

    static let maxNow: UInt64 = 1 << 61
    /// Message types as the input's bytes pick them: version 1's in their old order, newer ones
    /// after, so that a new type does not change what the stored corpus programs do. A type that
    /// version 2 dropped keeps its slot under its successor: HEARTBEAT (slot 1) and PROBE (slot 3)
    /// became PING, PROBE_ACK (slot 4) became ACK.
    static let messageTypes: [MessageType] = [
        .announce, .ping, .goodbye, .ping, .ack, .members, .hello, .helloReply, .pageRequest, .page,
        .digestRequest, .digestReply, .candidacy, .leader, .vote, .controlRequest, .controlReply,
        .pingRequest, .nack, .change, .userEvent,
    ]
    var time: Now { Now(nanos: now, wallMillis: wallMillis) }
    var wallMillis: UInt64 {
        UInt64(clamping: max(0, min(Int64(1) << 53, 1_800_000_000_000 + Int64(now / 1_000_000) + wallOffset)))
    }

    /// Runs `bytes` as a program; the report holds the first broken invariant, if any.
    /// `observe` sees each step and the peers' state after it (for triage: it has printed the
    /// path before a trap).
    static func run(_ bytes: [UInt8], ignoring: Set<String> = [], observe: ((String) -> Void)? = nil) -> Report {
        var input = FuzzInput(bytes)
        var world = PeerFuzzInterpreter()
        world.ignoring = ignoring
        world.setUp(&input)
        while !input.isEmpty, world.report.violation == nil, world.report.steps < 256 {
            world.report.steps += 1
            world.step(&input)
            observe?("\(world.report.steps) \(world.step): \(world.summary)")
        }
        return world.report
    }

    var summary: String {
        slots.map { slot in
            let peer = slot.peer
            return "[clock \(peer.clock.value) inc \(peer.incarnation) members \(peer.members.count) live \(peer.liveCount) "
                + "elections \(peer.elections.mapValues(\.term)) revoked \(peer.revoked.count) drops \(peer.counters.drops)]"
        }.joined(separator: " ") + " now \(now)"
    }

    // MARK: Setup

    mutating func setUp(_ input: inout FuzzInput) {
        let flags = input.byte()
        let count = flags & 1 == 1 ? 2 : 1
        // The quorum byte's top bit also asks for small §6.6 limits, so that a few sprays reach them.
        let quorumByte = input.byte()
        let quorum = 1 + Int(quorumByte) % 5
        let smallLimits = quorumByte & 0x80 != 0
        if quorumByte & 0x40 != 0 { loopback = IPAddress(high: 0xFE80_0000_0000_0000, low: 0x77) }
        // Bit 0x20 asks for a warm start (below); the low bits give the quorum.
        let cluster = flags & 0x80 != 0 ? FuzzPools.nfc : "starling"
        var endpoints = (0..<count).map { Endpoint(ip: loopback, port: 9000 + UInt16($0)) }
        for index in 0..<count {
            var config = PeerConfig(name: input.pick(FuzzPools.names), id: NodeID(high: 0x5000, low: UInt64(index + 1)))
            config.cluster = cluster
            config.advertisedAddress = loopback
            config.replyPort = endpoints[index].port
            if flags & (2 << index) != 0 { config.keys = [FuzzPools.key] }
            if flags & (8 << index) != 0 { config.quorum = quorum }
            if flags & 0x20 != 0 {
                config.multicast = false
                config.seeds = endpoints.filter { $0 != endpoints[index] }
            }
            config.autoReelect = flags & 0x40 == 0
            if smallLimits {
                config.limits.members = 64
                config.limits.admissionBurst = 32
                config.limits.admissionsPerSecond = 16
                config.limits.admissionWaiting = 16
                config.limits.topics = 8
                config.limits.relays = 8
                config.limits.replayWindows = 16
                config.limits.answerBytesBurst = 16 << 10
                config.limits.answerDestinations = 8
            }
            config.randomSeed = UInt64(input.byte()) + 1
            let clock = input.below(4) == 0 ? input.integer(UInt64.self) : 0
            // A persisted clock above the ceiling is lowered when loaded; from there it only grows.
            var peer = Peer(config: config, clock: clock)
            _ = peer.register(commands: ["work"])
            slots.append(Slot(peer: peer, endpoint: endpoints[index], lastClock: peer.clock.value))
        }
        endpoints.removeAll()
        if quorumByte & 0x20 != 0 {
            // A warm start (the simulator's): the peers and three members that never answer,
            // held alive and published from the start.
            let fakes = (0..<3).map { k in
                MemberEntry(id: NodeID(high: 0x6000, low: UInt64(k)), incarnation: UInt32(k), status: .alive,
                    endpoint: Endpoint(ip: loopback, port: 9100 + UInt16(k)), name: input.pick(FuzzPools.names))
            }
            let view = slots.map { MemberEntry(id: $0.peer.config.id, incarnation: 0, status: .alive, endpoint: $0.endpoint, name: $0.peer.config.name) } + fakes
            for index in slots.indices { absorb(slots[index].peer.startWarm(view: view, now: time), from: index) }
        } else {
            for index in slots.indices { absorb(slots[index].peer.start(now: time), from: index) }
        }
        checkAll()
    }

    // MARK: Steps

    mutating func step(_ input: inout FuzzInput) {
        let slot = input.below(slots.count)
        switch input.below(16) {
        case 0:
            step = "advance small"
            advance(by: UInt64(input.raw(UInt16.self) % 5_000) * 1_000_000)
        case 1:
            step = "advance large"
            advance(by: input.pick([10_000, 60_000, 3_600_000, 86_400_000, 31_536_000_000, UInt64(UInt32.max)]) * 1_000_000)
        case 2:
            step = "tick"
            tick(slot)
        case 3, 4, 5, 6:
            deliverStructured(&input, to: slot)
        case 7:
            deliverMutated(&input, to: slot)
        case 8:
            deliverBatch(&input, to: slot)
        case 9:
            step = "route"
            route(limit: 1 + input.below(64))
        case 10:
            elect(&input, slot: slot)
        case 11:
            revoke(&input, slot: slot)
        case 12:
            request(&input, slot: slot)
        case 13:
            restart(&input, slot: slot)
        case 14:
            spray(&input, to: slot)
        default:
            switch input.below(4) {
            case 0: return rotateKeys(&input, slot: slot)
            case 1: return setTags(&input, slot: slot)
            default: break
            }
            step = "wall clock step"
            let jump = Int64(input.pick([1_000, 3_600_000, 86_400_000, 31_536_000_000, Int64(1) << 40]))
            wallOffset = max(-(Int64(1) << 50), min(Int64(1) << 50, wallOffset + (input.byte() & 1 == 0 ? jump : -jump)))
        }
        checkAll()
    }

    /// Moves time forward running every timer that falls due, as an event loop would, with the
    /// other peer's datagrams delivered between ticks. A long jump is a stalled process: it
    /// ticks at most 64 times on the way.
    mutating func advance(by delta: UInt64) {
        let end = min(now + delta, Self.maxNow)
        var ticks = 0
        var sameInstant = 0
        while ticks < 64, report.violation == nil {
            guard let (index, deadline) = slots.indices.map({ ($0, slots[$0].peer.nextDeadline) }).min(by: { $0.1 < $1.1 }),
                deadline <= end
            else { break }
            if deadline <= now {
                sameInstant += 1
                if sameInstant > 8 { return fail("timer_livelock: peer \(index) keeps asking for a tick at \(now)") }
            } else {
                sameInstant = 0
            }
            let asked = deadline >= now
            now = max(now, deadline)
            tick(index, asked: asked)
            route(limit: 64)
            ticks += 1
        }
        now = end
    }

    /// Runs a peer's timers at `now`: afterwards none may lie in the past (work the tick skipped,
    /// or a timer that fires at every input). One at `now` itself may be a bounded burst (a
    /// request with idle timeout 0 retries twice at once); `advance` catches one that never ends.
    /// `asked`: the peer is woken at the very deadline it asked for, so it was not away: it must
    /// not take the wait for a stall of its own (which would shift every timer it holds).
    mutating func tick(_ index: Int, asked: Bool = false) {
        let actions = slots[index].peer.onTick(now: time)
        if asked, actions.contains(where: { if case .emit(.stalled) = $0 { true } else { false } }) {
            return fail("false_stall: peer \(index) woken at the deadline it asked for (\(now)) reports a stall of its own")
        }
        absorb(actions, from: index)
        let deadline = slots[index].peer.nextDeadline
        if report.violation == nil, deadline < now {
            fail("deadline_past: peer \(index) asks for a tick at \(deadline), before the one it just had at \(now)")
        }
    }

    /// Delivers what the peers sent each other (in order, at most `limit` datagrams).
    mutating func route(limit: Int) {
        // The shell's handlers answer (a second answer of one request must send nothing).
        for index in slots.indices where !slots[index].commands.isEmpty {
            let commands = slots[index].commands
            slots[index].commands = []
            for (number, command) in commands.enumerated() where report.violation == nil {
                absorb(slots[index].peer.answer(command, status: number % 3 == 2 ? .error : .ok, body: "{\"n\":\(number)}", now: time), from: index)
                if !slots[index].peer.answer(command, status: .ok, body: "{}", now: time).isEmpty { fail("command_answered_twice: peer \(index)") }
            }
        }
        var left = limit
        for index in slots.indices {
            while left > 0, !slots[index].inbox.isEmpty, report.violation == nil {
                let (bytes, source) = slots[index].inbox.removeFirst()
                deliver(bytes, from: source, to: index, mustDrop: false)
                left -= 1
            }
        }
    }

    mutating func deliverStructured(_ input: inout FuzzInput, to slot: Int) {
        guard let (message, bytes) = structured(&input, for: slot) else { return }
        step = "deliver \(message.payload.type.name) from \(message.header.sender.short)"
        var source = input.below(4) == 0 ? endpoint(&input) : Endpoint(ip: loopback, port: message.header.replyPort)
        // A socket only receives from its own family.
        if source.ip.family != loopback.family { source.ip = loopback }
        deliver(bytes, from: source, to: slot, mustDrop: mustDrop(message, at: slot))
    }

    /// A structured message for `slot` and its bytes under that peer's codec.
    mutating func structured(_ input: inout FuzzInput, for slot: Int) -> (Message, [UInt8])? {
        let type = Self.messageTypes[input.below(Self.messageTypes.count)]
        let header = header(&input, for: slot)
        let payload = payload(type, &input, for: slot)
        var extensions = extensions(&input)
        // Issue 18: a MEMBERS page may list the tags of members on it, at any incarnation.
        if case .members(let page) = payload, !page.entries.isEmpty, input.below(2) == 0 {
            let records = page.entries.indices.filter { _ in input.below(2) == 0 }.map { index in
                ListedTags(index: UInt8(truncatingIfNeeded: index), incarnation: input.pick([0, 1, page.entries[index].incarnation, UInt32.max]),
                    tags: input.pick(Array(FuzzPools.tags[1...2])))
            }
            if !records.isEmpty { extensions += ListedTags.extensions(records) }
        }
        let message = Message(header: header, payload: payload, extensions: extensions)
        guard let bytes = Self.encode(message, with: slots[slot].codec) else { return nil }
        return (message, bytes)
    }

    /// Datagrams a correct peer refuses whatever its state: another cluster's (compared as
    /// bytes: issue 14 item 9) and its own looped back.
    func mustDrop(_ message: Message, at slot: Int) -> Bool {
        let config = slots[slot].peer.config
        return !message.header.cluster.utf8.elementsEqual(config.cluster.utf8) || message.header.sender == config.id
    }

    /// A valid datagram with a few bytes changed, re-tagged half of the time so that a keyed
    /// peer reads past the tag check into a payload no encoder would write.
    mutating func deliverMutated(_ input: inout FuzzInput, to slot: Int) {
        step = "deliver mutated bytes"
        var bytes: [UInt8]
        if input.below(4) == 0 {
            bytes = (0..<input.below(256)).map { _ in input.byte() }
        } else {
            let type = Self.messageTypes[input.below(Self.messageTypes.count)]
            let message = Message(header: header(&input, for: slot), payload: payload(type, &input, for: slot))
            guard let plain = Self.encode(message, with: Codec()) else { return }
            bytes = plain
            for _ in 0..<(1 + input.below(8)) where !bytes.isEmpty {
                let at = input.below(min(bytes.count, 256)) + (bytes.count > 256 ? input.below(bytes.count - 255) : 0)
                switch input.below(6) {
                case 0: bytes[at] ^= 1 << UInt8(input.below(8))
                case 1: bytes[at] = input.pick([0, 1, 0x7F, 0x80, 0xFE, 0xFF])
                case 2: bytes.insert(input.byte(), at: at)
                case 3: bytes.remove(at: at)
                case 4: bytes.removeLast(bytes.count - at)
                default: bytes.append(contentsOf: (0..<input.below(8)).map { _ in input.byte() })
                }
            }
            if let key = slots[slot].peer.config.keys.first, bytes.count > 7, input.byte() & 1 == 1 {
                bytes[7] |= 1
                bytes += key.tag(bytes)
            }
        }
        deliver(bytes, from: Endpoint(ip: loopback, port: 9100), to: slot, mustDrop: false)
    }

    /// Several datagrams received together (`onDatagrams`, tags checked in lanes).
    mutating func deliverBatch(_ input: inout FuzzInput, to slot: Int) {
        step = "deliver batch"
        var datagrams: [[UInt8]] = []
        var drops = 0
        for _ in 0..<(2 + input.below(5)) {
            guard let (message, bytes) = structured(&input, for: slot) else { continue }
            datagrams.append(bytes)
            if mustDrop(message, at: slot) { drops += 1 }
            // The model judges datagrams one at a time; a batch's senders leave it.
            judgeReplay(message, expected: nil, droppedAsReplay: false, at: slot)
        }
        let source = Endpoint(ip: loopback, port: 9100)
        let before = slots[slot].peer.counters
        let actions = Codec.withBuffers(datagrams) { buffers in
            slots[slot].peer.onDatagrams(buffers.map { ($0, source) }, now: time)
        }
        absorb(actions, from: slot)
        checkDrops(before: before, expected: drops, at: slot)
    }

    mutating func deliver(_ bytes: [UInt8], from source: Endpoint, to slot: Int, mustDrop: Bool) {
        let before = slots[slot].peer.counters
        let message = try? slots[slot].codec.decode(bytes)
        let expectation = message.flatMap { replayExpectation($0, at: slot) }
        absorb(slots[slot].peer.onDatagram(bytes, from: source, now: time), from: slot, datagram: true)
        checkDrops(before: before, expected: mustDrop ? 1 : 0, at: slot)
        guard let message, slots[slot].peer.counters.datagramsIn > before.datagramsIn else { return }
        let after = slots[slot].peer.counters.drops
        let replayed = (after["replay"] ?? 0) > (before.drops["replay"] ?? 0)
        judgeReplay(message, expected: expectation, droppedAsReplay: replayed, at: slot)
        if after == before.drops {
            report.delivered[message.payload.type, default: 0] += 1
            if report.accepted.count < 64 { report.accepted.append((report.steps, message.payload.type)) }
        }
    }

    mutating func checkDrops(before: Counters, expected: Int, at slot: Int) {
        let peer = slots[slot].peer
        guard expected > 0, !peer.stopped, peer.counters.datagramsIn > before.datagramsIn else { return }
        let dropped = peer.counters.drops.values.reduce(0, +) - before.drops.values.reduce(0, +)
        if dropped < UInt64(expected) {
            fail("foreign_accepted: peer \(slot) (cluster \(Array(peer.config.cluster.utf8))) accepted a datagram of another cluster (as bytes) or its own id")
        }
    }

    // MARK: Actions and invariants

    /// Checks every datagram a peer sends and hands it to the other peer.
    mutating func absorb(_ actions: [Action], from index: Int, datagram: Bool = false) {
        var bytesOut = 0
        var shutdown = false
        // One datagram sent to many destinations is checked once (decoding verifies its tag:
        // without this, tag checks were a third of the fuzzer's time).
        var checked: [UInt8] = []
        for action in actions {
            switch action {
            case .send(let bytes, let destination):
                bytesOut += bytes.count
                guard bytes.count <= Limits.maxDatagram else { return fail("send_oversized: \(bytes.count) bytes") }
                if quickSends || bytes == checked {
                    route(bytes, to: destination, from: index)
                    continue
                }
                checked = bytes
                guard let message = try? slots[index].codec.decode(bytes) else {
                    return fail("send_undecodable: peer \(index) sent bytes its own codec refuses")
                }
                let header = message.header
                // One datagram sent to several destinations repeats its sequence; it never goes back.
                guard header.sender == slots[index].peer.config.id, header.sequence >= slots[index].lastSequence else {
                    return fail("send_header: sequence \(header.sequence) after \(slots[index].lastSequence)")
                }
                slots[index].lastSequence = header.sequence
                if case .ping(let ping) = message.payload, ping.piggyback.count > slots[index].peer.config.piggybackPerPing {
                    return fail("piggyback_oversized: PING with \(ping.piggyback.count) entries")
                }
                if case .ack(let ping) = message.payload, ping.piggyback.count > slots[index].peer.config.piggybackPerPing {
                    return fail("piggyback_oversized: ACK with \(ping.piggyback.count) entries")
                }
                memory.note(message.payload)
                route(bytes, to: destination, from: index)
            case .shutdown:
                shutdown = true
            case .command(let request):
                if slots[index].commands.count < 512 { slots[index].commands.append(request) }
            case .emit, .stateChanged, .reload:
                break
            }
        }
        if bytesOut > (datagram ? FuzzBounds.bytesPerDatagram : FuzzBounds.bytesPerCall) {
            fail("amplification: one \(datagram ? "datagram" : "call") made peer \(index) send \(bytesOut) bytes (§6.6)")
        }
        // The shell stops a peer after carrying out what came before the shutdown.
        if shutdown { absorb(slots[index].peer.stop(now: time), from: index) }
    }

    /// Queues a datagram for the other peer if it goes there.
    mutating func route(_ bytes: [UInt8], to destination: Destination, from index: Int) {
        for other in slots.indices where other != index {
            let reaches = destination == .group || destination == .peer(slots[other].endpoint)
            if reaches, slots[other].inbox.count < 256 { slots[other].inbox.append((bytes, slots[index].endpoint)) }
        }
    }

    mutating func checkAll() {
        for index in slots.indices where report.violation == nil { check(index) }
    }

    /// What must hold after every step (issue 14 items 3, 4, 6, 9, 11–13; issue 16: suspicions,
    /// dissemination, relays).
    mutating func check(_ index: Int) {
        let peer = slots[index].peer
        if peer.clock.value < slots[index].lastClock {
            return fail("clock_decreased: peer \(index) clock \(slots[index].lastClock) -> \(peer.clock.value)")
        }
        slots[index].lastClock = peer.clock.value
        if peer.clock.value > LamportClock.max || peer.elections.values.contains(where: { $0.term > Limits.maxTerm }) {
            return fail("ceiling: peer \(index) clock \(peer.clock.value) or a term above 2^63 − 1 (§4.2, §6.4)")
        }
        if peer.incarnation < slots[index].lastIncarnation {
            return fail("incarnation_decreased: peer \(index) incarnation \(slots[index].lastIncarnation) -> \(peer.incarnation)")
        }
        slots[index].lastIncarnation = peer.incarnation
        // Terms only grow while a topic is held; a full topic table may forget one (§6.6) and
        // start it again lower, so a step that ends with the table full only takes note.
        let topicsFull = peer.elections.count >= peer.config.limits.topics
        for (topic, election) in peer.elections {
            if !topicsFull, let last = slots[index].terms[topic], election.term < last {
                return fail("term_decreased: peer \(index) topic \(Array(topic.string.utf8)) term \(last) -> \(election.term)")
            }
        }
        slots[index].terms = peer.elections.mapValues(\.term)
        if let drop = peer.counters.drops.keys.first(where: { $0.hasPrefix("encode_") }) {
            return fail("encode_drop: peer \(index) counted \(drop) (issue 14 item 6: an encode drop must fail tests)")
        }
        latestWall = max(latestWall, wallMillis)
        if peer.revoked.count <= 5_000, let latest = peer.revoked.entries.values.max(), latest > latestWall &+ FuzzBounds.revokedSkewMillis {
            return fail("revoked_future: peer \(index) holds a revoke time \(latest) ms, wall clock \(latestWall) ms (issue 14 item 14)")
        }
        // Issue 16: a suspicion is held only while its member is suspect (else its timeout could
        // kill a refuted member), and the piggyback queue holds at most one entry per member
        // and this peer's own.
        if let id = peer.suspicions.keys.first(where: { peer.members[$0]?.status != .suspect }) {
            return fail("suspicion_not_suspect: peer \(index) holds a suspicion of \(id.short), \(peer.members[id]?.status.name ?? "absent")")
        }
        if let member = peer.members.values.first(where: { $0.status == .suspect && peer.suspicions[$0.id] == nil }) {
            return fail("suspect_without_suspicion: peer \(index) holds \(member.id.short) suspect with no timeout to end it")
        }
        if peer.dissemination.count > peer.members.count + 1 {
            return fail("dissemination_unbounded: peer \(index) queues \(peer.dissemination.count) entries for \(peer.members.count) members")
        }
        // Issue 19: one cluster is one family; entries of the other are skipped (§2.5).
        if let member = peer.members.values.first(where: { $0.endpoint.ip.family != loopback.family }) {
            return fail("family_mixed: peer \(index) holds \(member.id.short) at \(member.endpoint) in a \(loopback.family) cluster")
        }
        // Issue 18: tags are held only for members of the view, each within §3.4.1's 512 bytes.
        if let (id, record) = peer.membership.tagRecords.first(where: { peer.members[$0.key] == nil || $0.value.tags.encodedSize > Limits.tagsBytes }) {
            return fail("tags_orphan: peer \(index) holds \(record.tags.encodedSize) bytes of tags for \(id.short), \(peer.members[id] == nil ? "not a member" : "over the bound")")
        }
        let live = peer.members.values.filter(\.isLive).count
        if peer.liveCount != live + 1 { return fail("live_count: \(peer.liveCount) but \(live) live members + self") }
        // §6.1.8: the published count is exact, and with nothing held back every live member is published.
        let published = peer.members.values.filter(\.isPublished).count
        if peer.publishedCount != published { return fail("published_count: \(peer.publishedCount) but \(published) published rows") }
        if !peer.holdsNewcomersBack, let hidden = peer.members.values.first(where: { $0.isLive && !$0.isPublished }) {
            return fail("held_back: peer \(index) holds nothing back but never published live \(hidden.id.short)")
        }
        if let stray = peer.membership.paths.keys.first(where: { peer.members[$0] == nil }) { return fail("path estimate kept for \(stray), not in the view") }
        let limits = peer.config.limits
        let tables: [(String, Int, Int)] = [
            ("members", peer.members.count, limits.members), ("elections", peer.elections.count, limits.topics),
            ("revoked", peer.revoked.count, peer.config.revokedMaxCount), ("watchers", peer.watchers.count, FuzzBounds.watchers),
            ("requests", peer.requests.count, FuzzBounds.requests), ("recentRequests", peer.recentRequests.count, FuzzBounds.runOnce),
            ("replay", peer.replay.count, limits.replayWindows), ("relays", peer.relays.values.count(where: { !$0.lastChance }), limits.relays),
            // One per member: a duplicate target makes the count exceed its bound.
            ("lastChances", peer.relays.values.count(where: \.lastChance),
                min(limits.members, Set(peer.relays.values.filter(\.lastChance).map(\.target)).count)),
            ("pendingElectReplies", peer.pendingElectReplies.count, FuzzBounds.electWaiters),
            ("reaped", peer.reaped.count, FuzzBounds.derivedTable), ("replaced", peer.replaced.count, FuzzBounds.derivedTable),
            ("suspicions", peer.suspicions.count, limits.members), ("pacedReplies", peer.responder.paced.count, FuzzBounds.pacedReplies),
            ("paths", peer.membership.paths.count, FuzzBounds.derivedTable),
            ("waiting", peer.membership.waiting.count, limits.admissionWaiting),
            ("waitingPlaces", peer.membership.waiting.placesHeld, 4 * limits.admissionWaiting + 128),
            ("asked", peer.membership.asked.count, Membership.askedPerPeriod),
            ("viewUpdates", peer.membership.viewUpdates.count, Membership.viewUpdateLimit),
        ]
        if let (table, size, bound) = tables.first(where: { $0.1 > $0.2 }) {
            fail("unbounded_\(table): peer \(index) holds \(size) > \(bound)")
        }
    }

    mutating func fail(_ message: String) {
        if let name = message.split(separator: ":").first, ignoring.contains(String(name)) { return }
        if report.violation == nil { report.violation = "\(message) [step \(report.steps): \(step)]" }
    }
}
