import StarlingCore
import StarlingPOSIX
import Synchronization

// Event handlers (issue 18, README "Event handlers"). The thread carrying out the loop's effects
// hands every cluster event to `enqueue`, which only matches filters and appends to a bounded
// queue under a lock: it never spawns, waits or writes to a child. One dispatcher thread of the
// runner's own starts handlers while fewer than `concurrency` run, feeds each its JSON, reaps
// them (waitpid WNOHANG, 1 ms after a start doubling to 16 ms: no SIGCHLD handler, which an
// embedder's process may own) and ends those past their time limit: SIGTERM to the handler's
// process group, SIGKILL 2 s later.

/// Counts of the agent's event handler runs (``Agent/eventHandlerStats``; `handlers_*` in
/// `stats`, `starling_event_handler_*` in the metrics). A run stopped because the agent stopped
/// is started but has none of the three outcomes.
public struct EventHandlerStats: Sendable, Equatable {
    /// Runs started (the shell was spawned).
    public var started: UInt64 = 0
    /// Runs that exited with status 0.
    public var succeeded: UInt64 = 0
    /// Runs that exited non-zero, were ended by a signal they were not sent for a time-out, or
    /// could not be started or waited for.
    public var failed: UInt64 = 0
    /// Runs stopped at their time limit.
    public var timedOut: UInt64 = 0
    /// Runs never started: the queue was full (the oldest waiting run went), or the agent stopped.
    public var dropped: UInt64 = 0
    /// Waiting runs replaced by a newer one of the same user event name or member
    /// (``Configuration/eventHandlerCoalesce``).
    public var coalesced: UInt64 = 0
    /// Running now, and waiting for a free slot now.
    public var running = 0
    public var queued = 0
}

final class EventHandlerRunner: Sendable {
    private struct Job: Sendable {
        var handler: Int
        var kind: String
        var fields: [(String, JSON)]
        var json: JSON
        /// What a newer job replaces this one by when coalescing: the user event's name, or the
        /// member whose tags changed (as bytes); nil for any other event.
        var coalescing: [UInt8]?
    }

    /// A started run, owned by the dispatcher thread.
    private struct Run {
        var handler: Int
        var kind: String
        var pid: Int32
        /// Our end of its standard input; -1 once closed.
        var input: Int32
        var pending: [UInt8]
        var written = 0
        var deadline: UInt64
        /// When SIGKILL follows the SIGTERM already sent; nil before, .max once sent.
        var killAt: UInt64?
        var timedOut = false
    }

    private struct State {
        var queue: [Job] = []
        var stats = EventHandlerStats()
        var stopping = false
        /// Set by the dispatcher once it has signalled the runs left at stop.
        var stopHandled = false
        var threadStarted = false
        var droppedLogged: UInt64 = 0
        var lastDropLog: UInt64 = 0
    }

    let handlers: [EventHandler]
    private let matchers: [EventMatcher]
    let concurrency: Int
    let timeoutNanos: UInt64
    let coalesce: Bool
    private let agentName: String
    private let cluster: String
    private let logger: Logger
    private let wake: WakePipe
    private let state = Mutex(State())

    /// SIGKILL this long after a time-out's SIGTERM.
    static let killGraceNanos: UInt64 = 2_000_000_000
    private static let maxReapDelayNanos: UInt64 = 16_000_000

    /// nil when the configuration has no handlers.
    static func make(_ configuration: Configuration, logger: Logger) throws(Errno) -> EventHandlerRunner? {
        configuration.eventHandlers.isEmpty ? nil : try EventHandlerRunner(configuration, logger: logger)
    }

    private init(_ configuration: Configuration, logger: Logger) throws(Errno) {
        handlers = configuration.eventHandlers
        matchers = configuration.eventHandlers.map { EventMatcher($0.filter) }
        concurrency = configuration.eventHandlerConcurrency
        timeoutNanos = configuration.eventHandlerTimeout.nanos
        coalesce = configuration.eventHandlerCoalesce
        agentName = configuration.name
        cluster = configuration.cluster
        self.logger = logger
        wake = try WakePipe()
    }

    /// Starts the dispatcher thread.
    func start() throws(Errno) {
        try startThread { [self] in dispatch() }
        state.withLock { $0.threadStarted = true }
    }

    var stats: EventHandlerStats { state.withLock { $0.stats } }

    /// Queues a run per matching handler. Called for every core event on the thread carrying out
    /// the loop's effects: plumbing is turned away before anything is rendered.
    func enqueue(_ event: PeerEvent) {
        switch event {
        case .reply, .requestFinished, .dropped, .reaped, .otherVersion: return
        default: break
        }
        let rendering = event.rendering
        guard let fields = rendering.fields else { return }
        let userEvent = fields.first { $0.0 == "name" }?.1.stringValue
        let matched = matchers.indices.filter { matchers[$0].matches(kind: rendering.name, userEvent: userEvent) }
        guard !matched.isEmpty, let json = Peer.eventJSON(event, source: agentName, wallMillis: System.now().wallMillis) else { return }
        let key = coalesce ? Self.coalescingKey(event) : nil
        let queued = state.withLock { state in
            guard !state.stopping else { return false }
            for handler in matched {
                if let key, let waiting = state.queue.firstIndex(where: { $0.handler == handler && $0.coalescing == key }) {
                    state.queue[waiting] = Job(handler: handler, kind: rendering.name, fields: fields, json: json, coalescing: key)
                    state.stats.coalesced.saturatingIncrement()
                    continue
                }
                if state.queue.count >= EventHandler.queueLimit {
                    state.queue.removeFirst()
                    state.stats.dropped.saturatingIncrement()
                }
                state.queue.append(Job(handler: handler, kind: rendering.name, fields: fields, json: json, coalescing: key))
            }
            state.stats.queued = state.queue.count
            return true
        }
        if queued { wake.wake() }
    }

    /// What a newer event replaces a waiting one by (a user event's name; a member's id for a
    /// change of its tags, tagged so the two kinds never meet); nil for events never coalesced.
    private static func coalescingKey(_ event: PeerEvent) -> [UInt8]? {
        switch event {
        case .userEvent(let name, _, _, _, _, _): [0x75] + Array(name.utf8)
        case .tagsChanged(_, let id, _): [0x74] + Array(id.description.utf8)
        default: nil
        }
    }

    /// The agent stopped: queued runs are dropped, running ones get SIGTERM (SIGKILL 2 s later
    /// while this process lives). Waits up to 200 ms for the dispatcher to have signalled them,
    /// so a process that exits next does not leave them running unknowingly.
    func stop() {
        state.withLock { state in
            state.stopping = true
            state.stats.dropped = state.stats.dropped.saturatingAdd(UInt64(state.queue.count))
            state.queue.removeAll()
            state.stats.queued = 0
            if !state.threadStarted { state.stopHandled = true }
        }
        wake.wake()
        for _ in 0..<200 where !state.withLock({ $0.stopHandled }) { System.sleep(millis: 1) }
    }

    // MARK: Dispatcher thread

    private func dispatch() {
        var runs: [Run] = []
        var reapDelay: UInt64 = 1_000_000
        var stopSignalled = false
        while true {
            let free = max(0, concurrency - runs.count)
            let (jobs, stopping) = state.withLock { state in
                let jobs = Array(state.queue.prefix(free))
                state.queue.removeFirst(jobs.count)
                state.stats.queued = state.queue.count
                return (jobs, state.stopping)
            }
            var now = System.now().nanos
            for job in jobs {
                if let run = launch(job, now: now) { runs.append(run) }
                reapDelay = 1_000_000
            }
            if stopping && !stopSignalled {
                stopSignalled = true
                if !runs.isEmpty { logger.log(.info, "agent stopping: \(runs.count) event handler run(s) still going get SIGTERM") }
                for index in runs.indices where runs[index].killAt == nil {
                    System.signalGroup(runs[index].pid, Signals.terminate)
                    runs[index].killAt = now &+ Self.killGraceNanos
                }
                state.withLock { $0.stopHandled = true }
            }
            now = System.now().nanos
            let reaped = reap(&runs, now: now)
            enforceLimits(&runs, now: now)
            logDrops(now: now)
            state.withLock { $0.stats.running = runs.count }
            if stopping && runs.isEmpty { return }
            if reaped {
                // A slot is free: take waiting runs before sleeping.
                reapDelay = 1_000_000
                continue
            }
            var timeout: UInt64?
            if !runs.isEmpty {
                timeout = reapDelay
                for run in runs {
                    let due = run.killAt ?? run.deadline
                    timeout = min(timeout ?? due, due &- min(due, now))
                }
                reapDelay = min(reapDelay * 2, Self.maxReapDelayNanos)
            }
            let writing = runs.filter { $0.input >= 0 }.map(\.input)
            do {
                let ready = try Poller.wait([wake.readEnd], writing: writing, timeoutNanos: timeout)
                if ready.contains(wake.readEnd) { _ = wake.drain() }
                for index in runs.indices where runs[index].input >= 0 && ready.contains(runs[index].input) { feed(&runs[index]) }
            } catch {
                // Never a spin: the timers are re-read after a pause.
                System.sleep(millis: 10)
            }
        }
    }

    /// Spawns the handler with the event's JSON to write and its variables.
    private func launch(_ job: Job, now: UInt64) -> Run? {
        let handler = handlers[job.handler]
        let environment = EventHandler.environment(kind: job.kind, fields: job.fields, agent: agentName, cluster: cluster)
        let child: ShellChild
        do {
            child = try System.spawnShell(handler.command, environment: environment)
        } catch {
            state.withLock { $0.stats.failed.saturatingIncrement() }
            logger.log(.warning, "event handler \(Self.shown(handler.command)) for \(job.kind) could not start: \(error)")
            return nil
        }
        state.withLock { $0.stats.started.saturatingIncrement() }
        let sum = now.addingReportingOverflow(timeoutNanos)
        var run = Run(handler: job.handler, kind: job.kind, pid: child.pid, input: child.input,
            pending: Array((job.json.serialized() + "\n").utf8), deadline: sum.overflow ? .max : sum.partialValue)
        feed(&run)
        return run
    }

    /// Writes what the child's input takes; closes it when all is written or the child closed
    /// its end (a handler need not read its input: not a failure).
    private func feed(_ run: inout Run) {
        guard run.input >= 0 else { return }
        while run.written < run.pending.count {
            do {
                guard let count = try System.sendInput(run.input, run.pending[run.written...]) else { return }
                run.written += max(0, count)
                if count <= 0 { break }
            } catch {
                break
            }
        }
        System.close(run.input)
        run.input = -1
        run.pending = []
    }

    /// Reaps the runs that ended, counting and logging each; true when any ended.
    private func reap(_ runs: inout [Run], now: UInt64) -> Bool {
        var ended = false
        var index = 0
        while index < runs.count {
            let run = runs[index]
            let exit: (code: Int32, signal: Int32)?
            do { exit = try System.reap(run.pid) } catch { exit = (-1, 0) }  // ECHILD: someone else reaped it
            guard let exit else {
                index += 1
                continue
            }
            ended = true
            if run.input >= 0 { System.close(run.input) }
            runs.remove(at: index)
            let what = "event handler \(Self.shown(handlers[run.handler].command)) for \(run.kind)"
            if run.timedOut {
                state.withLock { $0.stats.timedOut.saturatingIncrement() }
                let seconds = Double(timeoutNanos) / 1e9
                logger.log(.warning, "\(what) timed out after \(seconds) s and was stopped (\(run.killAt == .max ? "SIGKILL" : "SIGTERM"))")
            } else if exit.code == 0 && exit.signal == 0 {
                state.withLock { $0.stats.succeeded.saturatingIncrement() }
            } else if run.killAt != nil {
                // Stopped because the agent stopped: neither a failure nor a time-out.
                logger.log(.info, "\(what) stopped with the agent")
            } else {
                state.withLock { $0.stats.failed.saturatingIncrement() }
                let how = exit.code < 0 ? "could not be waited for (reaped elsewhere)"
                    : exit.signal != 0 ? "was ended by signal \(exit.signal)" : "exited with status \(exit.code)"
                logger.log(.warning, "\(what) \(how)")
            }
        }
        return ended
    }

    /// SIGTERM to a run's group at its deadline, SIGKILL 2 s later. Only runs not yet reaped are
    /// signalled, so their group id is still theirs.
    private func enforceLimits(_ runs: inout [Run], now: UInt64) {
        for index in runs.indices {
            if runs[index].killAt == nil, now >= runs[index].deadline {
                runs[index].timedOut = true
                runs[index].killAt = now &+ Self.killGraceNanos
                System.signalGroup(runs[index].pid, Signals.terminate)
            } else if let killAt = runs[index].killAt, killAt != .max, now >= killAt {
                runs[index].killAt = .max
                System.signalGroup(runs[index].pid, Signals.kill)
            }
        }
    }

    /// Runs dropped from a full queue: logged at most every 10 s, with the count since.
    private func logDrops(now: UInt64) {
        let line: String? = state.withLock { state in
            let dropped = state.stats.dropped
            guard dropped > state.droppedLogged, !state.stopping,
                  state.lastDropLog == 0 || now &- state.lastDropLog >= 10_000_000_000 else { return nil }
            defer { state.droppedLogged = dropped; state.lastDropLog = max(now, 1) }
            return "event handlers fall behind: \(dropped &- state.droppedLogged) run(s) dropped from the full queue of \(EventHandler.queueLimit) (oldest first; stats handlers_dropped)"
        }
        if let line { logger.log(.warning, line) }
    }

    /// A command for a log line: at most 80 characters (the logger escapes the rest).
    static func shown(_ command: String) -> String {
        command.count > 80 ? "'\(command.prefix(80))…'" : "'\(command)'"
    }
}

extension UInt64 {
    /// +1 that stops at the maximum instead of trapping (the core's `saturatingAdd`).
    mutating func saturatingIncrement() { self = saturatingAdd(1) }
}

// MARK: Hooks called from the agent (Agent.swift, Metrics.swift)

extension Agent {
    /// Counts of event handler runs; all zero without ``Configuration/eventHandlers``.
    public var eventHandlerStats: EventHandlerStats { eventHandlers?.stats ?? EventHandlerStats() }

    /// At the start of the loop, before the first event: subscribes the runner to the events
    /// the effects thread carries out, and starts its thread.
    func startEventHandlers() {
        guard let eventHandlers else { return }
        do {
            try eventHandlers.start()
        } catch {
            logger.log(.error, "event handlers will not run: cannot start their thread: \(error)")
            return
        }
        loop.withLock { $0.handlers.append { eventHandlers.enqueue($0) } }
        logger.log(.info, "\(eventHandlers.handlers.count) event handler(s), at most \(eventHandlers.concurrency) running at once, each stopped after \(Double(eventHandlers.timeoutNanos) / 1e9) s")
    }

    /// When the loop has stopped.
    func stopEventHandlers() { eventHandlers?.stop() }

    /// The `handlers_*` fields of `stats`; none without handlers.
    func eventHandlerInfo() -> [(String, JSON)] {
        guard let eventHandlers else { return [] }
        let stats = eventHandlers.stats
        return [("handlers_started", .int(stats.started)), ("handlers_succeeded", .int(stats.succeeded)),
                ("handlers_failed", .int(stats.failed)), ("handlers_timed_out", .int(stats.timedOut)),
                ("handlers_dropped", .int(stats.dropped)), ("handlers_coalesced", .int(stats.coalesced)), ("handlers_running", .int(stats.running)),
                ("handlers_queued", .int(stats.queued))]
    }

    /// The `starling_event_handler*` metrics.
    func addEventHandlerMetrics(to page: inout Exposition) {
        let stats = eventHandlerStats
        page.add("starling_event_handler_runs_total", .counter,
            "Event handler runs by outcome: succeeded (exit 0), failed (non-zero, a signal, or not started), timed_out (stopped at the time limit).",
            [([("outcome", "succeeded")], .count(stats.succeeded)), ([("outcome", "failed")], .count(stats.failed)),
             ([("outcome", "timed_out")], .count(stats.timedOut))])
        page.add("starling_event_handler_dropped_total", .counter,
            "Event handler runs dropped: the queue was full (the oldest waiting went) or the agent stopped.", .count(stats.dropped))
        page.add("starling_event_handlers_running", .gauge, "Event handler processes running now.", .count(UInt64(max(0, stats.running))))
    }
}
