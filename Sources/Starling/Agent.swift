import StarlingCore
import StarlingPOSIX
import Synchronization

/// A running Starling peer: the sans-IO protocol core driven by one poll loop over two
/// non-blocking UDP sockets, on a thread of its own. Embed it in any Swift program:
///
/// ```swift
/// let agent = try Agent(.loopback(name: "worker-1"))
/// let run = Task { try await agent.run() }   // until cancelled or shutdown()
/// for await event in agent.events { print(event) }
/// ```
///
/// Every method may be called from any thread or task.
public final class Agent: Sendable {
    /// The settings it was created with (validated).
    public let configuration: Configuration
    /// This agent's node id: random, new at every start.
    public let id: NodeID
    /// The interface it joined the group on.
    public let interface: Interface
    /// The unicast socket's address: where replies and probes reach this agent.
    public let endpoint: Endpoint
    /// Files that were unreadable at start and set aside.
    public let stateSetAside: [String]
    /// What loading durable state skipped (refused entries, a last log line cut by a crash).
    let stateNotes: [String]
    let unicast: UDPSocket
    let groupSocket: UDPSocket?
    let wakePipe: WakePipe
    let store: StateStore?
    let logger: Logger
    let loop: Mutex<LoopState>
    /// Descriptor of the `--event-log` file; -1 without one.
    let eventLog: Int32
    /// Subscribers of ``events``.
    let hub: EventHub
    /// One reload at a time (SIGHUP, the command and the API may meet), applied in order.
    let reloading = Mutex<Void>(())
    /// Set by the first ``start()`` or ``run(handlingSignals:)``: an agent runs one loop, once.
    let started = Atomic<Bool>(false)
    let finished = Atomic<Bool>(false)
    /// Datagrams the kernel refused (a full socket buffer, ENOBUFS, an unreachable network):
    /// `send_failed` in stats.
    let sendFailures = Atomic<UInt64>(0)
    /// Monotonic time of the last "send failed" log line (0: never), for the 10 s rate limit.
    let lastSendFailureLog = Atomic<UInt64>(0)
    /// Polls that failed (and were retried after a backoff): `poll_failed` in stats.
    let pollFailures = Atomic<UInt64>(0)
    /// systemd's readiness protocol, with ``Configuration/systemdNotify`` (ServiceNotifier.swift).
    let notifier: ServiceNotifier?
    /// The `/metrics` endpoint (``Configuration/metrics``), polled by the loop; MetricsServer.swift.
    let metricsServer: MetricsServer?
    /// Runs ``Configuration/eventHandlers``; nil without any (EventHandlerRunner.swift).
    let eventHandlers: EventHandlerRunner?

    struct LoopState: Sendable {
        var peer: Peer
        var faults: FaultInjector
        var delayed: [(due: UInt64, bytes: [UInt8], to: Destination)] = []
        var persistAt: UInt64?
        /// The clock value last queued for saving; nil after a failed save, so it is retried.
        var savedClock: UInt64?
        /// Why the last save of the revoked set or of the clock failed; nil when it succeeded.
        var revokedSaveError: String?
        var clockSaveError: String?
        /// Times saving started to fail (each logged once, as is the recovery).
        var durabilityFailures: UInt64 = 0
        var nextHousekeepingAt: UInt64 = 0
        var running = false
        var stopRequested = false
        var handlers: [@Sendable (PeerEvent) -> Void] = []
        /// Handlers of registered commands (Agent+Commands.swift), by command name as bytes.
        var commands: [ByteString: CommandHandler] = [:]
        var waiters: [UInt32: RequestWaiter] = [:]
        var lastDropLog: [String: UInt64] = [:]
        var startedAt: UInt64 = 0
        var startupCodeDropped = false
        /// What the core asked for that runs outside the lock, in order (see Agent+Outbox.swift).
        var outbox: [Effect] = []
        /// True while one thread carries out the outbox; others leave their effects to it.
        var draining = false
        /// What `/metrics` counts from the core's actions (Metrics.swift).
        var metrics = MetricsCounters()
    }

    /// Checks `configuration`, loads durable state and opens the sockets; nothing is sent until
    /// ``run(handlingSignals:)`` or ``start()``.
    public init(_ configuration: Configuration) throws(AgentError) {
        try configuration.validate()
        var configuration = configuration
        let (keyFile, level, tags) = try configuration.reloadable()
        configuration.logLevel = level
        if let tags {
            configuration.tags = tags
            configuration.tagsFromSettings = true
        }
        if let keyFile { configuration.keys = try KeyFile.load(keyFile) }
        self.configuration = configuration
        hub = EventHub(bufferSize: configuration.eventBufferSize)
        let now = System.now()
        // Durable state first: a directory that cannot keep revokes stops the start before any
        // socket is opened.
        var loaded = StateStore.Loaded()
        if let directory = configuration.stateDirectory {
            let store = try StateStore(directory: directory)
            loaded = try store.load(strict: configuration.strictState, nowMillis: now.wallMillis,
                maxCount: configuration.revokedMaxCount, maxAgeMillis: configuration.revokedMaxAge.nanos / 1_000_000)
            self.store = store
        } else {
            store = nil
        }
        stateSetAside = loaded.setAside.map { "\($0.0) -> \($0.1): \($0.2)" }
        stateNotes = loaded.notes
        do { interface = try Interface.resolve(configuration.interface, family: configuration.group.ip.family) } catch { throw .interface(error) }
        var rng = SplitMix64(seed: System.randomUInt64())
        id = NodeID.random(using: &rng)
        do {
            unicast = try UDPSocket.unicast(on: interface, port: configuration.port, ttl: configuration.ttl,
                receiveBuffer: configuration.receiveBufferBytes)
            groupSocket = configuration.multicast
                ? try UDPSocket.multicast(group: configuration.group, on: interface, receiveBuffer: configuration.receiveBufferBytes)
                : nil
            wakePipe = try WakePipe()
            metricsServer = try configuration.metrics.map { (endpoint) throws(Errno) in try MetricsServer(listen: endpoint) }
        } catch {
            throw .socket(error)
        }
        endpoint = unicast.local
        logger = Logger(level: configuration.logLevel, name: configuration.name, format: configuration.logFormat)
        do { eventHandlers = try EventHandlerRunner.make(configuration, logger: logger) } catch { throw .socket(error) }
        notifier = configuration.systemdNotify ? ServiceNotifier(.fromProcess()) : nil
        var peerConfig = configuration.peerConfig(id: id, replyPort: endpoint.port, seed: rng.next())
        peerConfig.advertisedAddress = interface.address
        var peer = Peer(config: peerConfig, clock: loaded.clock, revoked: loaded.revoked, nowMillis: now.wallMillis)
        if let store {
            // A fresh snapshot when the files hold more or less than the set now does, then an
            // empty log; from here on every change is appended (Protocol.md §6.3.5).
            do { try store.start(snapshot: loaded.needsCompaction ? peer.revokedEntries() : nil) } catch {
                throw .stateDirectory("cannot write state in \(store.directory): \(error)")
            }
            peer.startRevokedJournal()
        }
        let state = LoopState(peer: peer, faults: FaultInjector(settings: configuration.faults, seed: rng.next()), savedClock: loaded.clock)
        if let path = configuration.eventLog {
            do { eventLog = try System.openAppend(path) } catch {
                throw .invalidConfiguration(field: "eventLog", reason: "cannot open \(Escape.display(path)) for appending: \(error)")
            }
        } else {
            eventLog = -1
        }
        loop = Mutex(state)
        refreshHostInfo()
    }

    deinit {
        if eventLog >= 0 { System.close(eventLog) }
    }

    // MARK: Running

    /// Runs the agent until the calling task is cancelled or ``shutdown()`` is called, then
    /// stops it cleanly: GOODBYE sent, state saved, ``events`` ended. Returns normally then;
    /// throws ``AgentError/alreadyStarted`` when this agent ran (or was started) before.
    ///
    /// With `handlingSignals` (one agent per process, as the `starling` command does): SIGTERM,
    /// SIGINT and SIGQUIT stop it cleanly; SIGHUP reloads (``reload()``); SIGUSR1 writes its
    /// stats to the log; SIGPIPE is ignored, so a closed stderr never kills it. The previous
    /// actions are restored on return. Without it the process's signal handling is left alone.
    ///
    /// A task cancelled before the agent ran ends it without running: nothing is sent, waiting
    /// calls throw ``AgentError/notRunning`` and ``events`` end.
    public func run(handlingSignals: Bool = false) async throws(AgentError) {
        try claimLoop()
        if Task.isCancelled {
            endWithoutRunning()
            return
        }
        let outcome: AgentError? = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<AgentError?, Never>) in
                do throws(Errno) {
                    try startThread { [self] in
                        loopBody(handlingSignals: handlingSignals)
                        continuation.resume(returning: nil)
                    }
                } catch {
                    endWithoutRunning()
                    continuation.resume(returning: .thread(error))
                }
            }
        } onCancel: {
            shutdown()
        }
        if let outcome { throw outcome }
    }

    /// Runs the loop on a new thread and returns at once, for programs without async code; stop
    /// it with ``shutdown()`` and ``waitUntilFinished(timeout:)``. Throws
    /// ``AgentError/alreadyStarted`` when this agent was started (or run) before.
    public func start() throws(AgentError) {
        try claimLoop()
        do {
            try startThread { [self] in loopBody(handlingSignals: false) }
        } catch {
            endWithoutRunning()
            throw .thread(error)
        }
    }

    /// The agent will never run: callers waiting for it and event subscribers are let go.
    private func endWithoutRunning() {
        finished.store(true, ordering: .releasing)
        hub.finish()
    }

    /// Runs the loop on the calling thread until it stops (the `starling agent` command: its
    /// main thread has nothing else to do).
    package func runOnCurrentThread(handlingSignals: Bool) throws(AgentError) {
        try claimLoop()
        loopBody(handlingSignals: handlingSignals)
    }

    private func claimLoop() throws(AgentError) {
        guard started.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            throw .alreadyStarted
        }
    }

    /// Signals that stop the agent cleanly; SIGHUP reloads instead (``reload()``).
    private static let stopSignals = [Signals.terminate, Signals.interrupt, Signals.quit]

    private func loopBody(handlingSignals: Bool) {
        var signals: (pipe: WakePipe, route: Signals.Route)?
        if handlingSignals {
            do {
                let pipe = try WakePipe()
                signals = (pipe, try Signals.route(Self.stopSignals + [Signals.user1, Signals.hangup], to: pipe, ignoring: [Signals.pipe]))
            } catch {
                logger.log(.warning, "signals are not handled (\(error)): SIGTERM will not stop this agent cleanly")
            }
        }
        for line in stateSetAside { logger.log(.warning, "state file set aside: \(line)") }
        for note in stateNotes { logger.log(.warning, "state: \(note)") }
        if configuration.keys.isEmpty {
            logger.log(.warning, "no cluster key: datagrams are not authenticated (anyone on the LAN can join); see starling keygen")
        }
        logger.log(.info, "agent \(configuration.name) (\(id.short)) on interface \(interface.name) \(interface.addressText), group \(configuration.group), unicast port \(endpoint.port)")
        serviceLoopStarted()
        if let metricsEndpoint { logger.log(.info, "metrics at http://\(metricsEndpoint)/metrics") }
        startEventHandlers()
        withCore { state, now in
            state.running = true
            state.startedAt = now.nanos
            perform(state.peer.start(now: now), state: &state, now: now)
        }
        var buffer = [UInt8](repeating: 0, count: Self.batchSize * Self.slotSize)
        var descriptors = [unicast.descriptor, wakePipe.readEnd]
        if let groupSocket { descriptors.append(groupSocket.descriptor) }
        if let signals { descriptors.append(signals.pipe.readEnd) }
        // A failing poll is retried after 1, 2, 4 ... 100 ms: never a spin, and the timers still
        // run (late) while it fails.
        var backoff = Backoff(maximumMillis: 100)
        var nextHostInfoAt: UInt64 = 0
        while true {
            let (stop, timeout) = loop.withLock { state -> (Bool, UInt64) in
                let now = System.now().nanos
                return (state.stopRequested, Self.nextWake(state) &- min(now, Self.nextWake(state)))
            }
            if stop { break }
            let metrics = metricsServer?.interest(now: System.now().nanos) ?? .idle
            var ready: [Int32]
            do {
                ready = try Poller.wait(descriptors + metrics.reading, writing: metrics.writing,
                    timeoutNanos: metrics.timeout(serviceWait(timeout), now: System.now().nanos))
                if backoff.failures > 0 { logger.log(.info, "poll works again after \(backoff.failures) failures") }
                backoff.succeeded()
            } catch {
                pollFailures.add(1, ordering: .relaxed)
                let delay = backoff.failed()
                if backoff.failures == 1 { logger.log(.error, "poll failed: \(error); retrying every \(backoff.maximumMillis) ms at most until it works") }
                System.sleep(millis: delay)
                ready = descriptors + metrics.descriptors  // every read is non-blocking: look at each
            }
            if let signals, ready.contains(signals.pipe.readEnd) { handle(signals: signals.pipe.drain()) }
            if ready.contains(wakePipe.readEnd) { _ = wakePipe.drain() }
            // The group socket first: a newcomer's ANNOUNCE (which carries its tags) is sent before
            // any answer of its reaches the unicast socket, and read after it a HELLO_REPLY (no
            // tags) made the member join without its tags (TagsAgentTests failed 4 runs in 12).
            for socket in [groupSocket, unicast].compactMap({ $0 }) where ready.contains(socket.descriptor) {
                receive(from: socket, buffer: &buffer)
            }
            withCore { state, now in
                if now.nanos >= state.peer.nextDeadline {
                    perform(state.peer.onTick(now: now), state: &state, now: now)
                }
                flushDelayed(&state, now: now)
                housekeeping(&state, now: now)
            }
            serviceLoopTurn()
            metricsServer?.serve(ready: ready) { metricsText(server: $0) }
            let now = System.now().nanos
            if now >= nextHostInfoAt {
                nextHostInfoAt = now + .millis(1_000)
                refreshHostInfo()
            }
        }
        metricsServer?.stop()
        finishLoop()
        signals?.route.restore()
    }

    private func handle(signals numbers: [UInt8]) {
        for number in numbers.map(Int32.init) {
            if number == Signals.hangup {
                reloadLogged(requestedBy: "SIGHUP")
            } else if number == Signals.user1 {
                let stats = loop.withLock { $0.peer.stats(now: System.now()) }
                logger.log(.info, "\(Signals.name(number)): stats \(stats.serialized())")
            } else {
                logger.log(.info, "\(Signals.name(number)) received: stopping")
                loop.withLock { $0.stopRequested = true }
            }
        }
    }

    /// Asks the agent to stop cleanly (GOODBYE sent, state saved, ``events`` ended) and returns
    /// at once; ``run(handlingSignals:)`` returns when it is done. Safe from any thread, any
    /// number of times.
    public func shutdown() {
        loop.withLock { $0.stopRequested = true }
        wakePipe.wake()
    }

    /// Blocks until the loop has finished after ``shutdown()``; false when `timeout` passed first.
    @discardableResult
    public func waitUntilFinished(timeout: Duration = .seconds(5)) -> Bool {
        let sum = System.now().nanos.addingReportingOverflow(timeout.nanos)
        let deadline = sum.overflow ? UInt64.max : sum.partialValue
        while !finished.load(ordering: .acquiring) {
            if System.now().nanos >= deadline { return false }
            System.sleep(millis: 2)
        }
        return true
    }

    /// True once the loop has stopped.
    public var isFinished: Bool { finished.load(ordering: .acquiring) }

    private func finishLoop() {
        serviceStopping()
        loop.withLock { state in
            let now = System.now()
            perform(state.peer.stop(now: now), state: &state, now: now, immediate: true)
            persist(&state, revoked: true)
            state.running = false
            for (_, waiter) in state.waiters { waiter.finish(.deadline, expected: nil) }
            state.waiters.removeAll()
        }
        // The GOODBYEs and the save must be done before the process may exit.
        flush(waitingForOthers: true)
        stopEventHandlers()
        logger.log(.info, "agent stopped")
        finished.store(true, ordering: .releasing)
        hub.finish()
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
    /// Datagrams read per wake-up at most, so timers are never starved by a flood.
    static let drainLimit = 256

    /// Reads what is queued, a batch at a time: the core runs under the lock, then its sends and
    /// logs go out before the next batch is read.
    private func receive(from socket: UDPSocket, buffer: inout [UInt8]) {
        buffer.withUnsafeMutableBytes { slots in
            var drained = 0
            var exhausted = false
            while !exhausted, drained < Self.drainLimit {
                var batch: [(bytes: UnsafeRawBufferPointer, source: Endpoint)] = []
                while batch.count < Self.batchSize, drained < Self.drainLimit {
                    let slot = UnsafeMutableRawBufferPointer(rebasing: slots[(batch.count * Self.slotSize)...].prefix(Self.slotSize))
                    guard let (count, source) = try? socket.receive(into: slot) else {
                        exhausted = true
                        break
                    }
                    drained += 1
                    batch.append((UnsafeRawBufferPointer(rebasing: slot[0..<min(count, Self.slotSize)]), source))
                }
                guard !batch.isEmpty else { continue }
                withCore { state, now in
                    let kept = state.faults.settings.isActive ? batch.filter { !state.faults.dropIncoming(from: $0.source) } : batch
                    guard !kept.isEmpty else { return }
                    perform(state.peer.onDatagrams(kept, now: now), state: &state, now: now)
                }
            }
        }
    }

    /// Turns the core's actions into effects, in order. Runs under the loop lock; the effects are
    /// carried out by ``flush(waitingForOthers:)`` once it is released.
    func perform(_ actions: [Action], state: inout LoopState, now: Now, immediate: Bool = false) {
        keepRevokesBeforeAcknowledging(actions, state: &state)
        state.metrics.observe(actions, now: now.nanos, startedAt: state.startedAt)
        // The shell works on the caller's state in place: moving the state into a shell and
        // back copied the whole loop state (every table retained and released) once per batch,
        // 10 % of the agent's CPU per datagram under a flood.
        withUnsafeMutablePointer(to: &state) { pointer in
            var shell = LoopShell(agent: self, pointer: pointer, now: now, immediate: immediate)
            shell.perform(actions)
        }
    }

    /// The agent's meaning of each action: sends pass the fault injector and become effects,
    /// events are routed, a changed revoked set schedules a save, shutdown stops the loop.
    struct LoopShell: ActionShell {
        let agent: Agent
        /// The caller's state, valid only during ``perform(_:state:now:immediate:)``.
        let pointer: UnsafeMutablePointer<LoopState>
        var state: LoopState {
            _read { yield pointer.pointee }
            nonmutating _modify { yield &pointer.pointee }
        }
        let now: Now
        /// Sends now, past any injected delay (at shutdown).
        let immediate: Bool

        mutating func send(_ datagram: [UInt8], to destination: Destination) {
            if state.faults.dropOutgoing(to: destination.peer) { return }
            if state.faults.settings.delayNanos > 0, !immediate {
                let due = now.nanos + state.faults.settings.delayNanos
                let index = state.delayed.firstIndex { $0.due > due } ?? state.delayed.endIndex
                state.delayed.insert((due, datagram, destination), at: index)
            } else {
                state.outbox.append(.send(datagram, destination))
            }
        }

        mutating func emit(_ event: PeerEvent) { agent.route(event, state: &state, now: now) }

        mutating func revokedSetChanged() {
            if agent.store != nil, state.persistAt == nil { state.persistAt = now.nanos + .millis(50) }
        }

        mutating func shutdown(requestedBy requester: String) {
            agent.queueLog(.warning, "shutdown requested by \(requester)", state: &state)
            state.stopRequested = true
        }

        /// Files are read outside the lock: the outbox carries the reload out.
        mutating func reload(requestedBy requester: String) {
            state.outbox.append(.reload(requestedBy: requester))
        }

        /// Handlers run outside the lock, each in its own task: the outbox starts it.
        mutating func run(_ command: CommandRequest) {
            state.outbox.append(.command(command, state.commands[ByteString(command.command)]))
        }
    }

    private func flushDelayed(_ state: inout LoopState, now: Now) {
        while let first = state.delayed.first, first.due <= now.nanos {
            state.delayed.removeFirst()
            state.outbox.append(.send(first.bytes, first.to))
        }
    }

    /// Feeds request waiters and queues the event's log line, event-log record and handler calls.
    private func route(_ event: PeerEvent, state: inout LoopState, now: Now) {
        if let (requestID, reply) = Reply.carried(by: event) {
            state.waiters[requestID]?.add(reply)
        } else if case .requestFinished(let requestID, let reason, _, let expected) = event {
            state.waiters.removeValue(forKey: requestID)?.finish(reason, expected: expected)
        } else if case .dropped(let reason, let from) = event {
            // Counted always; logged at most once per reason every 10 s.
            if now.nanos &- (state.lastDropLog[reason] ?? 0) > .millis(10_000) || state.lastDropLog[reason] == nil {
                state.lastDropLog[reason] = now.nanos
                queueLog(.info, "dropping datagrams: \(reason) (latest from \(from)); see stats for counts", state: &state)
            }
        } else if let (level, text) = Logger.describe(event) {
            queueLog(level, text, event: logger.format == .json ? event : nil, state: &state)
        }
        if eventLog >= 0, let json = Peer.eventJSON(event, source: configuration.name, wallMillis: now.wallMillis) {
            state.outbox.append(.record(json, micros: System.wallMicros(), monoNanos: now.nanos))
        }
        if !state.handlers.isEmpty || hub.subscriberCount.load(ordering: .relaxed) > 0 { state.outbox.append(.event(event)) }
    }

    func queueLog(_ level: LogLevel, _ text: @autoclosure () -> String, event: PeerEvent? = nil, state: inout LoopState) {
        guard level >= logger.level else { return }
        // JSON records carry the event's name and fields (the ones `watch` shows).
        let fields = event.flatMap { event in event.rendering.fields.map { (event.kind, $0) } }
        state.outbox.append(.log(level, text(), event: fields))
    }

    /// Refreshes the `stats` fields only the shell knows; /proc is read outside the lock.
    private func refreshHostInfo() {
        let faultsDropped = loop.withLock { $0.faults.dropped }
        let info: [(String, JSON)] = [
            ("interface", .string(interface.name)), ("group", .string(configuration.group.description)),
            ("unicast", .string(endpoint.description)), ("resident_bytes", .int(System.residentBytes())),
            ("faults_dropped", .int(faultsDropped)), ("send_failed", .int(sendFailures.load(ordering: .relaxed))),
            ("poll_failed", .int(pollFailures.load(ordering: .relaxed))),
        ]
        let handlerInfo = eventHandlerInfo()
        loop.withLock { $0.peer.hostInfo = info + handlerInfo + Self.durabilityInfo($0, stored: store != nil) }
    }
}
