import StarlingCore

/// Network conditions of the in-memory network. Rates are per delivered datagram and per link.
public struct NetworkConditions: Sendable, Equatable {
    public var loss: Double = 0
    public var minDelay: UInt64 = 100_000
    public var maxDelay: UInt64 = 300_000
    /// Probability that a datagram is delivered twice.
    public var duplicate: Double = 0

    public init(loss: Double = 0, minDelay: UInt64 = 100_000, maxDelay: UInt64 = 300_000, duplicate: Double = 0) {
        self.loss = loss
        self.minDelay = minDelay
        self.maxDelay = maxDelay
        self.duplicate = duplicate
    }
}

/// One simulated node: a real ``Peer`` core plus what the simulator knows about it.
public struct SimNode: Sendable {
    public let index: Int
    public let endpoint: Endpoint
    public internal(set) var peer: Peer
    public internal(set) var crashed = false
    public internal(set) var started = false
    public internal(set) var pausedUntil: UInt64 = 0
    /// Every event this node emitted, with the virtual time.
    public internal(set) var events: [(time: UInt64, event: PeerEvent)] = []
    var tickGeneration: UInt64 = 0
    var scheduledTick: UInt64 = .max

    public var isUp: Bool { !crashed }

    /// The core's next deadline, read in place: reading it through the simulator's array of
    /// nodes copied the whole core on every scheduling.
    mutating func nextDeadline() -> UInt64 { peer.readNextDeadline() }
}

/// A deterministic discrete-event simulation of many peers on a lossy in-memory network. It
/// drives the very same ``Peer`` core as the agent, with virtual time: the same seed gives the
/// same run, event for event.
public final class Simulator {
    public let seed: UInt64
    /// The nodes of the run, for the views' expected size (``PeerConfig/expectedMembers``).
    let nodeCount: Int
    public private(set) var now: UInt64 = 0
    public let wallBase: UInt64 = 1_800_000_000_000
    public private(set) var nodes: [SimNode] = []
    public var conditions: NetworkConditions
    /// Nodes in different groups cannot reach each other; empty means no partition.
    public private(set) var partition: [Int: Int] = [:]
    public private(set) var delivered: UInt64 = 0
    public private(set) var sent: UInt64 = 0
    /// Datagrams put on the network, by message type code (header byte 5; Protocol.md §2.2).
    public private(set) var sentByType: [UInt8: UInt64] = [:]
    /// Datagrams sent to the group (counted once each, not per receiver), by message type code;
    /// election datagrams also by topic (Simulator+Elections.swift).
    public internal(set) var groupSentByType: [UInt8: UInt64] = [:]
    public internal(set) var groupElectionSentByTopic: [String: UInt64] = [:]
    /// Datagrams sent, by message type code: one per send, to the group or to one peer (what a
    /// host's `datagrams_out` counts), whatever reaches whom.
    public internal(set) var sendsByType: [UInt8: UInt64] = [:]
    /// Bytes put on the network, by message type code.
    public private(set) var bytesByType: [UInt8: UInt64] = [:]
    public private(set) var violations: [String] = []
    /// Check the Lamport rule on every delivery (costs a header parse per datagram).
    public var checkStamps = true
    /// Which events go into each node's ``SimNode/events`` (all by default). A log of every
    /// join costs 88 bytes per member per node, 8.8 GB at 10,000 nodes: runs at scale keep
    /// only what their checks read.
    public var recordsEvent: @Sendable (PeerEvent) -> Bool = { _ in true }
    /// Node index by node id (restarts add their new id).
    public private(set) var indexOf: [NodeID: Int] = [:]
    /// When each crashed or stopped node went down.
    public private(set) var downSince: [Int: UInt64] = [:]
    /// Pauses and spells of a node's own loss (node, from, to; `to` is `.max` while the loss
    /// lasts) and partitions (-1, from, to): times when silence is expected.
    public private(set) var disturbed: [(node: Int, from: UInt64, to: UInt64)] = []
    /// Loss on every link to or from a node (`degrade(_:loss:)`), beside `conditions.loss`.
    public private(set) var nodeLoss: [Int: Double] = [:] {
        didSet { lossByNode = nodeLoss.isEmpty ? [] : nodes.indices.map { nodeLoss[$0] ?? 0 } }
    }
    /// `nodeLoss` by node index (empty while `nodeLoss` is): a multicast reads
    /// it for every receiver, where two dictionary lookups each cost a hash.
    private var lossByNode: [Double] = []
    var splitSince: UInt64?
    var rng: SplitMix64
    var queue = EventQueue<Work>()
    let configure: @Sendable (inout PeerConfig, Int) -> Void
    /// The cluster's family: nodes sit at 127.1.x.x, or at fd00::7f01:x (issue 19).
    public let family: AddressFamily

    enum Work {
        case deliver(bytes: [UInt8], from: Int, to: Int)
        /// A datagram from outside the simulated cluster (an attacker on the LAN).
        case inject(bytes: [UInt8], source: Endpoint, to: Int)
        case tick(node: Int, generation: UInt64)
        case start(node: Int)
        /// A warm start (``warmStart()``): the node starts with ``warmView``.
        case startWarm(node: Int)
    }
    /// Every node as a member entry, alive, for the warm starts still queued.
    var warmView: [MemberEntry] = []

    /// Creates `count` nodes; `configure` adjusts each node's settings (index given), and node i
    /// starts with the revoked entries `revoked[i]` (as if loaded from its state dir). `family`
    /// places the nodes at IPv4 or IPv6 addresses (issue 19).
    public init(nodes count: Int, seed: UInt64, conditions: NetworkConditions = NetworkConditions(),
                revoked: [Int: [RevokedEntry]] = [:], family: AddressFamily = .ipv4,
                configure: @escaping @Sendable (inout PeerConfig, Int) -> Void = { _, _ in }) {
        self.seed = seed
        self.nodeCount = count
        self.family = family
        self.conditions = conditions
        self.rng = SplitMix64(seed: seed)
        self.configure = configure
        for index in 0..<count {
            nodes.append(makeNode(index, clock: 0, revoked: revoked[index] ?? []))
            indexOf[nodes[index].peer.config.id] = index
        }
    }

    /// Node `index`'s address: 127.1.0.0 + index, or fd00::7f01:0 + index.
    static func address(of index: Int, family: AddressFamily) -> IPAddress {
        let low = 0x7F01_0000 + UInt32(truncatingIfNeeded: index)
        return family == .ipv4 ? IPAddress(ipv4: low) : IPAddress(high: 0xFD00 << 48, low: UInt64(low))
    }

    public var nowValue: Now { Now(nanos: now, wallMillis: wallBase + now / 1_000_000) }

    /// The command that replays this run, printed with every failure.
    /// Deterministic hashing makes dictionary order, and so the run, the same in every process.
    public var replayHint: String { "seed \(seed): SWIFT_DETERMINISTIC_HASHING=1 STARLING_SIM_SEED=\(seed) swift test --filter StarlingSimulatorTests" }

    func makeNode(_ index: Int, clock: UInt64, revoked: [RevokedEntry]) -> SimNode {
        var config = PeerConfig(name: "node-\(index)", id: NodeID.random(using: &rng))
        config.randomSeed = rng.next()
        config.replyPort = 7000
        let endpoint = Endpoint(ip: Self.address(of: index, family: family), port: 7000)
        config.advertisedAddress = endpoint.ip
        // Every view grows to the node count: reserved once rather than grown by copies.
        config.expectedMembers = nodeCount
        configure(&config, index)
        return SimNode(index: index, endpoint: endpoint, peer: Peer(config: config, clock: clock, revoked: revoked, nowMillis: wallBase))
    }

    // MARK: Schedule

    /// Starts node `index` at virtual time `at` (default: now).
    public func start(_ index: Int, at: UInt64? = nil) {
        queue.push(.start(node: index), at: at ?? now)
    }

    /// Starts every node, spread over `spread` nanoseconds.
    public func startAll(spread: UInt64 = 0) {
        for index in nodes.indices { start(index, at: now + (spread == 0 ? 0 : rng.next() % spread)) }
    }

    /// Starts every node now, warm: each holds every other node alive and published from its
    /// start, with no join (``Peer/startWarm(view:now:)``), as a cluster long converged; their
    /// probes and anti-entropy begin at random points of their periods. Runs at scale measure
    /// the steady state this way: a cold start of 10,000 is 61 million deliveries before the
    /// first steady-state figure. (All at once: a node started later would be probed, and
    /// suspected, before it had a socket.)
    public func warmStart() {
        warmView = nodes.map { node in
            MemberEntry(id: node.peer.config.id, incarnation: 0, status: .alive, endpoint: node.endpoint, name: node.peer.config.name)
        }
        for index in nodes.indices { queue.push(.startWarm(node: index), at: now) }
    }

    /// Runs until virtual time `until` or until the queue is empty.
    public func run(until: UInt64) {
        while let time = queue.nextTime, time <= until {
            let (at, work) = queue.pop()!
            now = at
            switch work {
            case .start(let index):
                guard !nodes[index].crashed else { continue }
                nodes[index].started = true
                apply(nodes[index].peer.start(now: nowValue), from: index)
                schedule(index)
            case .startWarm(let index):
                guard !nodes[index].crashed else { continue }
                nodes[index].started = true
                apply(nodes[index].peer.startWarm(view: warmView, now: nowValue), from: index)
                schedule(index)
            case .tick(let index, let generation):
                guard nodes[index].tickGeneration == generation, !nodes[index].crashed else { continue }
                if nodes[index].pausedUntil > now {
                    // A resumed agent reads its socket before it runs its timers (Agent's loop):
                    // the datagrams held back for the pause come first.
                    queue.push(.tick(node: index, generation: generation), at: nodes[index].pausedUntil.saturatingAdd(1))
                    continue
                }
                nodes[index].scheduledTick = .max
                // Mutated in place: a copy would make every dictionary of the core copy itself.
                apply(nodes[index].peer.onTick(now: nowValue), from: index)
                if nodes[index].nextDeadline() <= now {
                    // A timer that stays due after its tick would spin a real agent at 100 % CPU.
                    violations.append("t=\(now): node-\(index) timer still due after its tick")
                    queue.push(.tick(node: index, generation: nodes[index].tickGeneration), at: now + 1_000_000)
                    continue
                }
                schedule(index)
            case .inject(let bytes, let source, let to):
                guard !nodes[to].crashed, nodes[to].started else { continue }
                delivered += 1
                apply(nodes[to].peer.onDatagram(bytes, from: source, now: nowValue), from: to)
                schedule(to)
            case .deliver(let bytes, let from, let to):
                // A node that has not started has no socket yet.
                guard !nodes[to].crashed, nodes[to].started else { continue }
                if nodes[to].pausedUntil > now {
                    // A paused process reads its socket buffer when it resumes.
                    queue.push(.deliver(bytes: bytes, from: from, to: to), at: nodes[to].pausedUntil)
                    continue
                }
                // Datagrams that reach a node at the same instant (a paused node's socket buffer,
                // read when it resumes) are handed over together, as the agent's receive loop does.
                // Nearly always there is one: it goes without a batch array to allocate.
                var batch: [(bytes: [UInt8], from: Int)] = []
                if let next = queue.first, next.time == now, case .deliver(_, _, to) = next.item {
                    batch.append((bytes, from))
                    while batch.count < 16, let next = queue.first, next.time == now,
                          case .deliver(let moreBytes, let moreFrom, to) = next.item {
                        _ = queue.pop()
                        batch.append((moreBytes, moreFrom))
                    }
                }
                delivered += UInt64(max(1, batch.count))
                let dropsBefore = checkStamps ? nodes[to].peer.counters.drops.values.reduce(0, +) : 0
                let actions: [Action]
                if batch.isEmpty {
                    actions = nodes[to].peer.onDatagram(bytes, from: nodes[from].endpoint, now: nowValue)
                } else {
                    actions = Codec.withBuffers(batch.map(\.bytes)) { buffers in
                        nodes[to].peer.onDatagrams(zip(buffers, batch).map { ($0, nodes[$1.from].endpoint) }, now: nowValue)
                    }
                }
                if checkStamps, !nodes[to].peer.config.faults.contains(.noClockAdjust),
                    nodes[to].peer.counters.drops.values.reduce(0, +) == dropsBefore
                {
                    // Every datagram was accepted: the clock is past the highest stamp received.
                    let stamp = batch.isEmpty ? Codec.stamp(ofDatagram: bytes) ?? 0 : batch.map { Codec.stamp(ofDatagram: $0.bytes) ?? 0 }.max() ?? 0
                    if nodes[to].peer.clock.value <= stamp, !nodes[to].peer.stopped {
                        violations.append("t=\(now): node-\(to) clock \(nodes[to].peer.clock.value) not past received stamp \(stamp)")
                    }
                }
                apply(actions, from: to)
                schedule(to)
            }
        }
        now = max(now, until)
    }

    /// Advances virtual time by `nanos`.
    public func advance(_ nanos: UInt64) { run(until: now + nanos) }

    private func schedule(_ index: Int) {
        let deadline = max(nodes[index].nextDeadline(), now)
        guard deadline != .max, deadline < nodes[index].scheduledTick else { return }
        nodes[index].tickGeneration += 1
        nodes[index].scheduledTick = deadline
        queue.push(.tick(node: index, generation: nodes[index].tickGeneration), at: deadline)
    }

    private func apply(_ actions: [Action], from index: Int) {
        var shell = NodeShell(simulator: self, index: index)
        shell.perform(actions)
    }

    /// The simulator's meaning of each action: datagrams go on the in-memory network, events
    /// are recorded (drops are only counted), a shutdown command takes the node down.
    struct NodeShell: ActionShell {
        let simulator: Simulator
        let index: Int

        func send(_ datagram: [UInt8], to destination: Destination) {
            if datagram.count > 5 { simulator.sendsByType[datagram[5], default: 0] += 1 }
            switch destination {
            case .group:
                simulator.countGroupSend(datagram, from: index)
                simulator.countSent(datagram, copies: simulator.nodes.count - 1)
                simulator.transmit(datagram, from: index, to: simulator.nodes.indices.lazy.filter { $0 != index })
            case .peer(let endpoint):
                let target = Int(UInt32(truncatingIfNeeded: endpoint.ip.low) &- 0x7F01_0000)
                if target >= 0, target < simulator.nodes.count, simulator.nodes[target].endpoint == endpoint {
                    simulator.countSent(datagram, copies: 1)
                    simulator.transmit(datagram, from: index, to: CollectionOfOne(target))
                }
            }
        }

        func emit(_ event: PeerEvent) {
            if case .dropped = event { return }
            guard simulator.recordsEvent(event) else { return }
            simulator.nodes[index].events.append((simulator.now, event))
        }

        func shutdown(requestedBy requester: String) { simulator.nodes[index].crashed = true }
        /// Simulated nodes have no files to re-read.
        func reload(requestedBy requester: String) {}
        /// Simulated nodes register no commands.
        func run(_ command: CommandRequest) {}
    }

    /// Counts `copies` datagrams put on the network: a group send counts once per receiver,
    /// in one step rather than one dictionary update per receiver.
    private func countSent(_ bytes: [UInt8], copies: Int) {
        guard copies > 0 else { return }
        sent += UInt64(copies)
        if bytes.count > 5 {
            sentByType[bytes[5], default: 0] += UInt64(copies)
            bytesByType[bytes[5], default: 0] += UInt64(bytes.count) * UInt64(copies)
        }
    }

    /// Puts one counted datagram on the link from `from` to `to` (lost, delayed, duplicated):
    /// appends its deliveries, if any, to `deliveries`.
    private func transmit(_ bytes: [UInt8], from: Int, to: Int, into deliveries: inout [(item: Work, time: UInt64)]) {
        if !partition.isEmpty, (partition[from] ?? -1) != (partition[to] ?? -1) { return }
        if conditions.loss > 0, chance(conditions.loss) { return }
        if !lossByNode.isEmpty {
            let rate = max(lossByNode[from], lossByNode[to])
            if rate > 0, chance(rate) { return }
        }
        let spread = conditions.maxDelay > conditions.minDelay ? rng.next() % (conditions.maxDelay - conditions.minDelay) : 0
        deliveries.append((.deliver(bytes: bytes, from: from, to: to), now + conditions.minDelay + spread))
        if conditions.duplicate > 0, chance(conditions.duplicate) {
            deliveries.append((.deliver(bytes: bytes, from: from, to: to), now + conditions.minDelay + spread + conditions.maxDelay))
        }
    }

    /// Sends `bytes` from node `from` to each of `targets`; the deliveries wait in the queue
    /// as one batch.
    func transmit(_ bytes: [UInt8], from: Int, to targets: some Sequence<Int>) {
        var deliveries: [(item: Work, time: UInt64)] = []
        for target in targets { transmit(bytes, from: from, to: target, into: &deliveries) }
        queue.push(batch: deliveries)
    }

    func chance(_ rate: Double) -> Bool { Double(rng.next() >> 11) / Double(1 << 53) < rate }

    // MARK: Faults

    /// Kills a node without a goodbye (kill -9).
    public func crash(_ index: Int) {
        downSince[index] = now
        nodes[index].crashed = true
        nodes[index].tickGeneration += 1
    }

    /// Stops a node cleanly: it says goodbye.
    public func stop(_ index: Int) {
        apply(nodes[index].peer.stop(now: nowValue), from: index)
        nodes[index].crashed = true
        downSince[index] = now
    }

    /// Restarts a crashed node with a new boot id, keeping its clock and revoked set when
    /// `keepState` (as `--state-dir` would).
    public func restart(_ index: Int, keepState: Bool) {
        var old = nodes[index].peer
        let clock = keepState ? old.clock.value : 0
        let revoked = keepState ? old.revokedEntries() : []
        var node = makeNode(index, clock: clock, revoked: revoked)
        node.events = nodes[index].events
        nodes[index] = node
        indexOf[node.peer.config.id] = index
        downSince[index] = nil
        start(index)
    }

    /// Freezes a node (a stalled process) for `nanos`.
    public func pause(_ index: Int, for nanos: UInt64) {
        nodes[index].pausedUntil = now + nanos
        disturbed.append((index, now, now + nanos))
    }

    /// Gives every link to or from node `index` a loss of its own (a bad cable, a full switch
    /// port) until ``restore(_:)``.
    public func degrade(_ index: Int, loss: Double) {
        nodeLoss[index] = loss
        disturbed.append((index, now, .max))
    }

    /// Ends node `index`'s own loss.
    public func restore(_ index: Int) {
        nodeLoss[index] = nil
        if let open = disturbed.lastIndex(where: { $0.node == index && $0.to == .max }) { disturbed[open].to = now }
    }

    /// Splits the network into groups that cannot reach each other.
    public func split(_ groups: [[Int]]) {
        partition = [:]
        splitSince = now
        for (group, members) in groups.enumerated() { for member in members { partition[member] = group } }
    }

    public func heal() {
        partition = [:]
        if let since = splitSince { disturbed.append((-1, since, now)) }
        splitSince = nil
    }

    /// Hands `bytes` to node `index` at time `at` as if sent from `source`, an address outside
    /// the cluster: forged or malformed datagrams from an attacker on the LAN. No loss applies.
    public func inject(_ bytes: [UInt8], from source: Endpoint, to index: Int, at: UInt64) {
        queue.push(.inject(bytes: bytes, source: source, to: index), at: max(at, now))
    }

    /// Lets a node act through the core's public API (revoke, elect, request).
    public func act(_ index: Int, _ body: (inout Peer, Now) -> [Action]) {
        let actions = body(&nodes[index].peer, nowValue)
        apply(actions, from: index)
        schedule(index)
    }
}
