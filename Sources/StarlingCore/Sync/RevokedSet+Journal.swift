/// What changed in a revoked set since the shell last looked, so that durable state can append
/// those entries instead of rewriting the whole set (Protocol.md §6.3.5).
public struct RevokedChanges: Sendable, Equatable {
    /// Entries added or moved to a later revoke time, in the order it happened.
    public var entries: [RevokedEntry]
    /// False when more changed than the journal keeps: the shell must save the whole set.
    public var complete: Bool

    public init(entries: [RevokedEntry], complete: Bool) {
        self.entries = entries
        self.complete = complete
    }
}

/// Bounded record of inserts: past `limit` entries it keeps none and says so, so a sync of a whole
/// set never doubles the memory it takes.
struct RevokedJournal: Sendable {
    let limit: Int
    private(set) var entries: [RevokedEntry] = []
    private(set) var overflowed = false

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    mutating func record(_ id: String, _ revokedAtMillis: UInt64) {
        guard !overflowed else { return }
        guard entries.count < limit else {
            overflowed = true
            entries = []
            return
        }
        entries.append(RevokedEntry(id: id, revokedAtMillis: revokedAtMillis))
    }
}

extension RevokedSet {
    /// Starts recording inserts (expiry and eviction are not recorded: a reload drops those
    /// entries again by age and bound).
    mutating func startJournal() {
        if journal == nil { journal = RevokedJournal(limit: maxCount) }
    }

    /// The recorded changes, emptying the journal. Without a journal: incomplete.
    mutating func takeJournal() -> RevokedChanges {
        guard let taken = journal else { return RevokedChanges(entries: [], complete: false) }
        journal = RevokedJournal(limit: maxCount)
        return RevokedChanges(entries: taken.entries, complete: !taken.overflowed)
    }
}
