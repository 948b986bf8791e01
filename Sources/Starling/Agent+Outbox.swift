import StarlingCore
import StarlingPOSIX

// The loop lock guards the core and nothing slow: whatever the core asks for that touches the
// outside world (sendto, a log line, an event-log record, an embedder's handler, a state save)
// is queued under the lock as an `Effect` and carried out after it is released. Every path that
// runs the core — the receive loop, timers, `revoke`, `request`, `elect`, shutdown — goes
// through `withCore` (or queues and calls `flush`), so every event reaches the handlers the
// same way. One thread at a time carries out the queue, in the order it was filled, so sends
// to a destination keep their order and handlers are never called concurrently.

extension Agent {
    /// One piece of work queued under the loop lock.
    enum Effect: Sendable {
        case send([UInt8], Destination)
        /// A log line; for a cluster event, its name and fields (JSON records show them).
        case log(LogLevel, String, event: (name: String, fields: [(String, JSON)])?)
        /// One `--event-log` line: the event's JSON and when it was emitted.
        case record(JSON, micros: UInt64, monoNanos: UInt64)
        /// An event for the `onEvent` handlers.
        case event(PeerEvent)
        case save(Save)
        /// An authorised `reload` command: re-read the key file and log level.
        case reload(requestedBy: String)
        /// A registered command to run, with its handler (nil: removed meanwhile).
        case command(CommandRequest, CommandHandler?)
    }

    /// Effects queued beyond this while another thread is carrying them out (a slow event
    /// handler) make the producer wait, so the queue stays bounded.
    static let outboxLimit = 16_384

    /// Runs `body` on the core under the loop lock, then carries out what it queued.
    @discardableResult
    func withCore<Result: Sendable>(_ body: (inout LoopState, Now) -> Result) -> Result {
        let result = loop.withLock { state in body(&state, System.now()) }
        flush()
        return result
    }

    /// Carries out the queued effects, outside the lock. When another thread is already doing
    /// so it takes ours too, and this returns at once; `waitingForOthers` waits until the queue
    /// is empty (at shutdown, so that the GOODBYEs and the save are done before exit).
    func flush(waitingForOthers: Bool = false) {
        var drainer = false
        var waitedMillis: UInt64 = 0
        while true {
            enum Step { case run([Effect], [@Sendable (PeerEvent) -> Void]), wait, done }
            let step = loop.withLock { state -> Step in
                if !drainer && state.draining {
                    return waitingForOthers || state.outbox.count > Self.outboxLimit ? .wait : .done
                }
                if state.outbox.isEmpty {
                    state.draining = false
                    return .done
                }
                state.draining = true
                var effects: [Effect] = []
                swap(&effects, &state.outbox)
                return .run(effects, state.handlers)
            }
            switch step {
            case .done:
                return
            case .wait:
                // Bounded: a handler stuck forever must not keep shutdown from finishing.
                if waitingForOthers && waitedMillis >= 2_000 { return }
                System.sleep(millis: 1)
                waitedMillis += 1
            case .run(let effects, let handlers):
                drainer = true
                execute(effects, handlers: handlers)
            }
        }
    }

    private func execute(_ effects: [Effect], handlers: [@Sendable (PeerEvent) -> Void]) {
        // After a save that could not keep a revoke, no control reply goes out until a save
        // succeeds again: none of them may acknowledge what is not on disk (Protocol.md §6.3.5).
        var withholdReplies = false
        for effect in effects {
            switch effect {
            case .send(let bytes, let destination):
                if withholdReplies, Self.isControlReply(bytes) { continue }
                transmit(bytes, to: destination)
            case .log(let level, let text, let event):
                logger.log(level, text, event: event)
            case .record(let json, let micros, let monoNanos):
                System.write("{\"t_us\":\(micros),\"mono_ns\":\(monoNanos),\"event\":\(json.serialized())}\n", to: eventLog)
            case .event(let event):
                for handler in handlers { handler(event) }
                if let event = ClusterEvent(event) { hub.publish(event) }
            case .save(let save):
                let kept = write(save)
                if save.changes != nil { withholdReplies = !kept }
            case .reload(let requester):
                reloadLogged(requestedBy: requester)
            case .command(let request, let handler):
                start(request, handler: handler)
            }
        }
    }

    /// Sends one datagram. A refusal (EAGAIN on a full buffer, ENOBUFS, an unreachable network)
    /// loses it as the wire would, but is counted (`send_failed`) and logged at most every 10 s.
    private func transmit(_ bytes: [UInt8], to destination: Destination) {
        let target = destination.endpoint(group: configuration.group)
        let failure: Errno
        do {
            if try unicast.send(bytes, to: target) { return }
            failure = Errno(Errno.wouldBlock.rawValue, "sendto")
        } catch {
            failure = error
        }
        let count = sendFailures.wrappingAdd(1, ordering: .relaxed).newValue
        let now = System.now().nanos
        let last = lastSendFailureLog.load(ordering: .relaxed)
        if last == 0 || now &- last > .millis(10_000) {
            lastSendFailureLog.store(max(now, 1), ordering: .relaxed)
            logger.log(.warning, "sending to \(target) failed: \(failure) (\(count) failed sends so far; stats send_failed)")
        }
    }
}
