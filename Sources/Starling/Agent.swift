import StarlingCore
import StarlingPOSIX
import Synchronization

/// A running Starling peer: the sans-IO ``Peer`` core driven by one poll loop over two
/// non-blocking UDP sockets. Embed it in any Swift program:
///
/// ```swift
/// let agent = try Agent(AgentConfiguration(name: "worker-1"))
/// agent.onEvent { print($0) }
/// try agent.start()            // runs the loop on its own thread
/// let replies = await agent.request("ping")
/// agent.stop()
/// ```
public final class Agent: Sendable {
    public let configuration: AgentConfiguration
    public let id: NodeID
    public let interface: Interface
    /// The unicast socket's address: where replies and probes reach this agent.
    public let endpoint: Endpoint
    /// Files that were unreadable at start and set aside.
    public let stateSetAside: [String]
    let unicast: UDPSocket
    let groupSocket: UDPSocket?
    let wakePipe: WakePipe
    let store: StateStore?
    let logger: Logger
    let loop: Mutex<LoopState>
    let finished = Atomic<Bool>(false)

    struct LoopState: Sendable {
        var peer: Peer
        var faults: FaultInjector
        var delayed: [(due: UInt64, bytes: [UInt8], to: Destination)] = []
        var persistAt: UInt64?
        var savedClock: UInt64
        var nextHousekeepingAt: UInt64 = 0
        var running = false
        var stopRequested = false
        var handlers: [@Sendable (PeerEvent) -> Void] = []
        var waiters: [UInt32: RequestWaiter] = [:]
        var eventLog: Int32 = -1
        var lastDropLog: [String: UInt64] = [:]
        var startedAt: UInt64 = 0
    }

    /// Opens the sockets and loads durable state; nothing is sent until ``run(handlingSignals:)``
    /// or ``start()``.
    public init(_ configuration: AgentConfiguration, logLevel: LogLevel = .info) throws(AgentError) {
        guard Limits.nameBytes.contains(configuration.name.utf8.count) else { throw .invalidName(configuration.name) }
        self.configuration = configuration
        do { interface = try Interface.resolve(configuration.interface) } catch { throw .interface(error) }
        var rng = SplitMix64(seed: System.randomUInt64())
        id = NodeID.random(using: &rng)
        do {
            unicast = try UDPSocket.unicast(interface: interface.address, port: configuration.port, ttl: configuration.ttl,
                receiveBuffer: configuration.receiveBuffer)
            groupSocket = configuration.multicast
                ? try UDPSocket.multicast(group: configuration.group, interface: interface.address, receiveBuffer: configuration.receiveBuffer)
                : nil
            wakePipe = try WakePipe()
        } catch {
            throw .socket(error)
        }
        endpoint = unicast.local
        logger = Logger(level: logLevel, name: configuration.name)
        let now = System.now()
        var loaded = StateStore.Loaded()
        if let directory = configuration.stateDirectory {
            let store = StateStore(directory: directory)
            loaded = try store.load(strict: configuration.strictState, wallMillis: now.wallMillis)
            self.store = store
        } else {
            store = nil
        }
        stateSetAside = loaded.setAside.map { "\($0.0) -> \($0.1): \($0.2)" }
        var peerConfig = configuration.peerConfig(id: id, replyPort: endpoint.port, seed: rng.next())
        peerConfig.advertisedAddress = interface.address
        var peer = Peer(config: peerConfig, clock: loaded.clock, revoked: loaded.revoked, nowMillis: now.wallMillis)
        peer.hostInfo = Self.hostInfo(interface: interface, group: configuration.group, unicast: endpoint, faultsDropped: 0)
        var state = LoopState(peer: peer, faults: FaultInjector(settings: configuration.faults, seed: rng.next()), savedClock: loaded.clock)
        if let path = configuration.eventLog { state.eventLog = (try? System.openAppend(path)) ?? -1 }
        loop = Mutex(state)
    }

    deinit {
        let fd = loop.withLock { $0.eventLog }
        if fd >= 0 { System.close(fd) }
    }

    // MARK: Running

    /// Runs the loop on a new thread and returns at once.
    public func start() throws(Errno) {
        try startThread { [self] in run() }
    }

    /// Runs the loop on the calling thread until ``stop()``, an authorised `shutdown` command,
    /// or (with `handlingSignals`) SIGINT/SIGTERM.
    public func run(handlingSignals: Bool = false) {
        let signals: WakePipe? = handlingSignals ? try? WakePipe() : nil
        if let signals { try? signals.routeTerminationSignals() }
        for line in stateSetAside { logger.log(.warning, "state file set aside: \(line)") }
        if configuration.keys.isEmpty {
            logger.log(.warning, "no cluster key: datagrams are not authenticated (anyone on the LAN can join); see starling keygen")
        }
        logger.log(.info, "agent \(configuration.name) (\(id.short)) on interface \(interface.name) \(interface.addressText), group \(configuration.group), unicast port \(endpoint.port)")
        var events: [PeerEvent] = []
        loop.withLock { state in
            state.running = true
            let now = System.now()
            state.startedAt = now.nanos
            let actions = state.peer.start(now: now)
            perform(actions, state: &state, now: now, events: &events)
        }
        deliver(events)
        var buffer = [UInt8](repeating: 0, count: Self.batchSize * Self.slotSize)
        var descriptors = [unicast.descriptor, wakePipe.readEnd]
        if let groupSocket { descriptors.append(groupSocket.descriptor) }
        if let signals { descriptors.append(signals.readEnd) }
        while true {
            let (stop, timeout) = loop.withLock { state -> (Bool, UInt64) in
                let now = System.now().nanos
                return (state.stopRequested, Self.nextWake(state) &- min(now, Self.nextWake(state)))
            }
            if stop { break }
            let ready = (try? Poller.wait(descriptors, timeoutNanos: timeout)) ?? []
            events.removeAll(keepingCapacity: true)
            if let signals, ready.contains(signals.readEnd) {
                let numbers = signals.drain()
                logger.log(.info, "signal \(numbers.last ?? 0) received: stopping")
                loop.withLock { $0.stopRequested = true }
            }
            if ready.contains(wakePipe.readEnd) { _ = wakePipe.drain() }
            for socket in [unicast, groupSocket].compactMap({ $0 }) where ready.contains(socket.descriptor) {
                receive(from: socket, buffer: &buffer, events: &events)
            }
            loop.withLock { state in
                let now = System.now()
                if now.nanos >= state.peer.nextDeadline {
                    perform(state.peer.onTick(now: now), state: &state, now: now, events: &events)
                }
                flushDelayed(&state, now: now)
                housekeeping(&state, now: now)
            }
            deliver(events)
        }
        shutdown()
    }

    /// Asks the loop to stop cleanly (goodbye, state saved). Safe from any thread.
    public func stop() {
        loop.withLock { $0.stopRequested = true }
        wakePipe.wake()
    }

    /// Blocks until the loop has finished after ``stop()`` (at most `timeoutMillis`).
    @discardableResult
    public func waitUntilFinished(timeoutMillis: UInt64 = 5_000) -> Bool {
        var waited: UInt64 = 0
        while !finished.load(ordering: .acquiring) {
            if waited >= timeoutMillis { return false }
            System.sleep(millis: 2)
            waited += 2
        }
        return true
    }

    private func shutdown() {
        var events: [PeerEvent] = []
        loop.withLock { state in
            let now = System.now()
            perform(state.peer.stop(now: now), state: &state, now: now, events: &events, immediate: true)
            persist(&state, revoked: true)
            state.running = false
            for (_, waiter) in state.waiters { waiter.finish(.deadline, expected: nil) }
            state.waiters.removeAll()
        }
        deliver(events)
        logger.log(.info, "agent stopped")
        finished.store(true, ordering: .releasing)
    }

    private static func nextWake(_ state: LoopState) -> UInt64 {
        var wake = min(state.peer.nextDeadline, state.nextHousekeepingAt)
        if let first = state.delayed.first { wake = min(wake, first.due) }
        if let persistAt = state.persistAt { wake = min(wake, persistAt) }
        return wake
    }

    // MARK: Datagrams

    /// Datagrams handed to the core together: tags are checked four at a time (Peer.onDatagrams).
    static let batchSize = 16
    /// Larger than the largest datagram, so an oversized one is still seen as oversized.
    static let slotSize = 2048

    private func receive(from socket: UDPSocket, buffer: inout [UInt8], events: inout [PeerEvent]) {
        // Drain what is queued under one lock and one clock read, but cap the total so timers
        // are never starved by a flood.
        loop.withLock { state in
            let now = System.now()
            buffer.withUnsafeMutableBytes { slots in
                var drained = 0
                var exhausted = false
                while !exhausted, drained < 256 {
                    var batch: [(bytes: UnsafeRawBufferPointer, source: Endpoint)] = []
                    while batch.count < Self.batchSize, drained < 256 {
                        let slot = UnsafeMutableRawBufferPointer(rebasing: slots[(batch.count * Self.slotSize)...].prefix(Self.slotSize))
                        guard let (count, source) = try? socket.receive(into: slot) else {
                            exhausted = true
                            break
                        }
                        drained += 1
                        guard !state.faults.dropIncoming(from: source) else { continue }
                        batch.append((UnsafeRawBufferPointer(rebasing: slot[0..<min(count, Self.slotSize)]), source))
                    }
                    guard !batch.isEmpty else { continue }
                    let actions = state.peer.onDatagrams(batch, now: now)
                    if !actions.isEmpty { perform(actions, state: &state, now: now, events: &events) }
                }
            }
        }
    }

    /// Carries out the core's actions. Runs under the loop lock; events are delivered after.
    func perform(_ actions: [Action], state: inout LoopState, now: Now, events: inout [PeerEvent], immediate: Bool = false) {
        for action in actions {
            switch action {
            case .send(let bytes, let destination):
                let target: Endpoint? = if case .peer(let endpoint) = destination { endpoint } else { nil }
                if state.faults.dropOutgoing(to: target) { continue }
                if state.faults.settings.delayNanos > 0, !immediate {
                    let due = now.nanos + state.faults.settings.delayNanos
                    let index = state.delayed.firstIndex { $0.due > due } ?? state.delayed.endIndex
                    state.delayed.insert((due, bytes, destination), at: index)
                } else {
                    transmit(bytes, to: destination)
                }
            case .emit(let event):
                events.append(event)
                route(event, state: &state, now: now)
            case .stateChanged:
                if store != nil, state.persistAt == nil { state.persistAt = now.nanos + .millis(50) }
            case .shutdown(let requester):
                logger.log(.warning, "shutdown requested by \(requester)")
                state.stopRequested = true
            }
        }
    }

    private func transmit(_ bytes: [UInt8], to destination: Destination) {
        switch destination {
        case .group: _ = try? unicast.send(bytes, to: configuration.group)
        case .peer(let endpoint): _ = try? unicast.send(bytes, to: endpoint)
        }
    }

    private func flushDelayed(_ state: inout LoopState, now: Now) {
        while let first = state.delayed.first, first.due <= now.nanos {
            state.delayed.removeFirst()
            transmit(first.bytes, to: first.to)
        }
    }

    /// Logs, writes the event log and feeds request waiters. Under the lock; cheap.
    private func route(_ event: PeerEvent, state: inout LoopState, now: Now) {
        switch event {
        case .reply(let requestID, let from, let id, let status, let body):
            state.waiters[requestID]?.add(Reply(name: from, id: id, status: status, body: body))
        case .requestFinished(let requestID, let reason, _, let expected):
            state.waiters.removeValue(forKey: requestID)?.finish(reason, expected: expected)
        case .dropped(let reason, let from):
            // Counted always; logged at most once per reason every 10 s.
            if now.nanos &- (state.lastDropLog[reason] ?? 0) > .millis(10_000) || state.lastDropLog[reason] == nil {
                state.lastDropLog[reason] = now.nanos
                logger.log(.info, "dropping datagrams: \(reason) (latest from \(from)); see stats for counts")
            }
        default:
            if let (level, text) = Logger.describe(event) { logger.log(level, text) }
        }
        if state.eventLog >= 0, let json = Peer.eventJSON(event, source: configuration.name, wallMillis: now.wallMillis) {
            System.write("{\"t_us\":\(System.wallMicros()),\"mono_ns\":\(now.nanos),\"event\":\(json.serialized())}\n", to: state.eventLog)
        }
    }

    /// The `stats` fields only the shell knows.
    private static func hostInfo(interface: Interface, group: Endpoint, unicast: Endpoint, faultsDropped: UInt64) -> [(String, JSON)] {
        [("interface", .string(interface.name)), ("group", .string(group.description)), ("unicast", .string(unicast.description)),
         ("resident_bytes", .int(System.residentBytes())), ("faults_dropped", .int(faultsDropped))]
    }

    /// Calls the event handlers, outside the loop lock.
    func deliver(_ events: [PeerEvent]) {
        guard !events.isEmpty else { return }
        let handlers = loop.withLock { $0.handlers }
        for event in events { for handler in handlers { handler(event) } }
    }

    // MARK: Durable state

    private func housekeeping(_ state: inout LoopState, now: Now) {
        if let persistAt = state.persistAt, now.nanos >= persistAt { persist(&state, revoked: true) }
        guard now.nanos >= state.nextHousekeepingAt else { return }
        state.nextHousekeepingAt = now.nanos + .millis(1_000)
        if state.peer.clock.value != state.savedClock { persist(&state, revoked: false) }
        state.peer.hostInfo = Self.hostInfo(interface: interface, group: configuration.group, unicast: endpoint,
            faultsDropped: state.faults.dropped)
    }

    private func persist(_ state: inout LoopState, revoked: Bool) {
        guard let store else {
            state.persistAt = nil
            return
        }
        if revoked || state.persistAt != nil {
            state.persistAt = nil
            do { try store.saveRevoked(state.peer.revokedEntries()) } catch { logger.log(.error, "saving revoked set: \(error)") }
        }
        do {
            try store.saveClock(state.peer.clock.value)
            state.savedClock = state.peer.clock.value
        } catch {
            logger.log(.error, "saving clock: \(error)")
        }
    }
}
