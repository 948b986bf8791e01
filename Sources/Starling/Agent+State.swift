import StarlingCore
import StarlingPOSIX

// Durable state: revokes are kept on disk before they are acknowledged, the clock is saved
// once a second, and a failing disk is reported and retried (Protocol.md §6.3.5).
extension Agent {
    /// Revokes are acknowledged only once on disk: when `actions` stored ids (a `revoked` event),
    /// a save of the changes is queued ahead of every datagram of `actions`, and the outbox
    /// carries it out (append, fsync) before it sends them; if it fails, the control replies
    /// after it are withheld (Agent+Outbox.swift) and the core refuses revokes until a save
    /// succeeds. While saves fail only housekeeping retries, once a second.
    func keepRevokesBeforeAcknowledging(_ actions: [Action], state: inout LoopState) {
        guard store != nil, state.revokedSaveError == nil,
            actions.contains(where: { if case .emit(.revoked) = $0 { true } else { false } })
        else { return }
        persist(&state, revoked: true, clock: false)
    }

    /// CONTROL_REPLY (type byte at offset 5, Protocol.md §2.2): what acknowledges a request.
    static func isControlReply(_ bytes: [UInt8]) -> Bool {
        bytes.count > 5 && bytes[5] == MessageType.controlReply.rawValue
    }

    func housekeeping(_ state: inout LoopState, now: Now) {
        if let persistAt = state.persistAt, now.nanos >= persistAt { persist(&state, revoked: true) }
        guard now.nanos >= state.nextHousekeepingAt else { return }
        state.nextHousekeepingAt = now.nanos + .millis(1_000)
        // Start-up is over once the join's hard deadline has passed.
        if configuration.dropStartupCode, !state.startupCodeDropped, now.nanos &- state.startedAt >= .millis(5_000) {
            state.startupCodeDropped = true
            let dropped = System.dropCleanCode()
            queueLog(.debug, "unmapped \(dropped / 1_024) KiB of resident code after start-up (it faults back in as it runs)", state: &state)
        }
        // Once a second: the clock if it moved, a retry after a failed save, a compaction once
        // the log has outgrown the snapshot (its cost spread over the revokes that grew the log).
        let revoked = state.revokedSaveError != nil || store?.wantsSnapshot == true
        if revoked || state.peer.clock.value != state.savedClock { persist(&state, revoked: revoked) }
    }

    /// Queues a save: takes what to write under the lock — the journal's changes, and the whole
    /// set only when a snapshot is due — and ``write(_:)`` does the file I/O outside it, in
    /// order with the sends around it.
    func persist(_ state: inout LoopState, revoked: Bool, clock: Bool = true) {
        guard let store else {
            state.persistAt = nil
            return
        }
        var save = Save()
        if revoked || state.persistAt != nil {
            state.persistAt = nil
            let changes = state.peer.takeRevokedChanges()
            save.changes = changes
            if !changes.complete || store.wantsSnapshot { save.snapshot = state.peer.revokedEntries() }
        }
        if clock {
            save.clock = state.peer.clock.value
            state.savedClock = save.clock
        }
        state.outbox.append(.save(save))
    }

    /// What one save writes, taken under the loop lock.
    struct Save: Sendable {
        /// Revoked-set changes to append; nil when the set is not part of this save. Replies
        /// queued after a save with changes acknowledge them (withheld if it fails).
        var changes: RevokedChanges?
        /// The whole set, when the store must write a snapshot instead of appending.
        var snapshot: [RevokedEntry]?
        var clock: UInt64?
    }

    /// Writes a queued save; runs outside the loop lock, on the thread carrying out the outbox.
    /// Returns false when the revoked set could not be kept.
    @discardableResult
    func write(_ save: Save) -> Bool {
        guard let store else { return true }
        var revokedResult: Result<Void, Errno>?
        var clockResult: Result<Void, Errno>?
        if let changes = save.changes {
            do { try store.save(changes, snapshot: save.snapshot); revokedResult = .success(()) } catch { revokedResult = .failure(error) }
        }
        if let clock = save.clock {
            do { try store.saveClock(clock); clockResult = .success(()) } catch { clockResult = .failure(error) }
        }
        loop.withLock { state in
            if case .failure(let error) = revokedResult { state.revokedSaveError = "saving revoked ids: \(error)" }
            if case .success = revokedResult { state.revokedSaveError = nil }
            if case .failure(let error) = clockResult {
                state.clockSaveError = "saving the clock: \(error)"
                if state.savedClock == save.clock { state.savedClock = nil }  // retried at the next housekeeping
            }
            if case .success = clockResult { state.clockSaveError = nil }
            updateDurability(&state)
        }
        if case .failure = revokedResult { return false }
        return true
    }

    /// Tells the core whether revokes can be kept, logging each change once (failing, recovered).
    func updateDurability(_ state: inout LoopState) {
        let error = state.revokedSaveError ?? state.clockSaveError
        guard error != state.peer.durabilityError else { return }
        if let error, state.peer.durabilityError == nil {
            state.durabilityFailures &+= 1
            queueLog(.error, "\(error); refusing revokes until the state directory can be written again", state: &state)
        } else if error == nil {
            queueLog(.warning, "state saved again; accepting revokes", state: &state)
        }
        state.peer.setDurabilityError(error)
        let keys: Set<String> = ["durable", "durability_error", "durability_failures"]
        state.peer.hostInfo = state.peer.hostInfo.filter { !keys.contains($0.0) } + Self.durabilityInfo(state, stored: true)
    }

    /// `durable`: revokes acknowledged here survive a restart (a state directory, last save good).
    static func durabilityInfo(_ state: LoopState, stored: Bool) -> [(String, JSON)] {
        let error = state.peer.durabilityError
        return [("durable", .bool(stored && error == nil)), ("durability_error", error.map { .string($0) } ?? .null),
                ("durability_failures", .int(state.durabilityFailures))]
    }
}
