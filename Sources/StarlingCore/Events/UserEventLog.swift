/// The user events a peer has delivered, by (origin, sequence), so that each is delivered once
/// however often it arrives (Protocol.md §6.7). Bounded: at most ``limit`` pairs and as many
/// origins. A pair is forgotten ``memory`` after it was recorded, or earlier when the table is
/// full (counted `user_events_full`); forgetting raises the origin's *floor*, and a sequence
/// at or below the floor counts as delivered. So a pair forgotten early can make a late copy
/// of an older, undelivered event be lost, never delivered twice.
struct UserEventLog: Sendable {
    /// Pairs (and origins) remembered at once.
    static let limit = 4_096
    /// How long a pair is remembered: longer than an origin re-sends (``maxDelivery``).
    static let memory: UInt64 = .millis(60_000)
    /// An origin re-sends an event to silent members for at most this long.
    static let maxDelivery: UInt64 = .millis(30_000)

    struct Origin: Sendable {
        var floor: UInt32 = 0
        var seen: Set<UInt32> = []
        /// When `seen` last became empty; the origin is forgotten ``memory`` later.
        var idleSince: UInt64?
    }

    struct Entry: Sendable {
        let origin: NodeID
        let sequence: UInt32
        let at: UInt64
    }

    private(set) var origins: [NodeID: Origin] = [:]
    /// Pairs in the order recorded (so in time order), from `head` on.
    private var entries: [Entry] = []
    private var head = 0
    /// Origins in the order their `seen` emptied, from `idleHead` on; stale items are skipped.
    private var idle: [(origin: NodeID, since: UInt64)] = []
    private var idleHead = 0
    /// This peer's own last sequence (it is an origin too).
    private(set) var lastSequence: UInt32 = 0

    var count: Int { entries.count - head }

    /// The next sequence for an event of this peer; nil once 2^32 − 1 were sent in this boot.
    mutating func nextSequence() -> UInt32? {
        guard lastSequence < UInt32.max else { return nil }
        lastSequence += 1
        return lastSequence
    }

    /// Records (origin, sequence) if it is new; false for a repeat (or one at or below the floor).
    mutating func record(origin: NodeID, sequence: UInt32, now: UInt64, out: inout Outbox) -> Bool {
        prune(now: now, out: &out)
        var record = origins[origin] ?? Origin()
        guard sequence > record.floor, !record.seen.contains(sequence) else { return false }
        if count >= Self.limit {
            out.drop("user_events_full")
            forgetOldest(now: now)
            // The oldest may have been this origin's own pair: read its record again.
            record = origins[origin] ?? Origin()
            guard sequence > record.floor else { return false }
        }
        record.seen.insert(sequence)
        record.idleSince = nil
        origins[origin] = record
        entries.append(Entry(origin: origin, sequence: sequence, at: now))
        trimOrigins(now: now, force: true, out: &out)
        return true
    }

    /// Forgets the pairs older than ``memory`` and the origins idle for as long.
    mutating func prune(now: UInt64, out: inout Outbox) {
        while head < entries.count, UInt64.later(entries[head].at, Self.memory) <= now { forgetOldest(now: now) }
        trimOrigins(now: now, force: false, out: &out)
    }

    private mutating func forgetOldest(now: UInt64) {
        guard head < entries.count else { return }
        let entry = entries[head]
        head += 1
        if head > 64, head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
        guard var record = origins[entry.origin] else { return }
        record.seen.remove(entry.sequence)
        record.floor = max(record.floor, entry.sequence)
        if record.seen.isEmpty {
            record.idleSince = now
            idle.append((entry.origin, now))
        }
        origins[entry.origin] = record
    }

    /// Forgets idle origins whose memory ran out, and with `force` also the longest idle ones
    /// while there are more than ``limit`` origins (counted: their floors are lost).
    private mutating func trimOrigins(now: UInt64, force: Bool, out: inout Outbox) {
        while idleHead < idle.count {
            let (origin, since) = idle[idleHead]
            let live = origins[origin].map { $0.seen.isEmpty && $0.idleSince == since } ?? false
            let expired = UInt64.later(since, Self.memory) <= now
            guard !live || expired || (force && origins.count > Self.limit) else { break }
            idleHead += 1
            if live {
                if !expired { out.drop("user_events_full") }
                origins[origin] = nil
            }
        }
        if idleHead > 64, idleHead * 2 > idle.count {
            idle.removeFirst(idleHead)
            idleHead = 0
        }
    }
}
