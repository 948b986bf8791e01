/// The queue of membership changes that ride on PING and ACK (Protocol.md §6.1.3): each
/// change is piggybacked λ · ⌈log10(n + 1)⌉ times after its one multicast, so that members that
/// missed the multicast still hear it within a few periods. One entry per member (its newest
/// state replaces an older one); the entries with most sends left go first, so a fresh change
/// is never starved by old ones. It holds at most `PeerConfig.Limits.piggybackQueue` members
/// (§6.6): in a join storm of 10,000 every peer queued every joiner, ~80 bytes per member per
/// peer, for changes that had each gone out by multicast already.
///
/// Entries sit in buckets by sends left (at most λ · 20), newest on top, so that taking a few
/// costs O(1) however many are queued: a join storm at 10,000 queues 10,000 changes, and
/// scanning them for every PING was most of a simulated peer's work. A member re-queued leaves
/// a stale copy in its old bucket, skipped when it comes up.
struct Dissemination: Sendable {
    /// Lifeguard/memberlist's retransmit multiplier (λ).
    static let multiplier = 4

    /// Member → sends left.
    private(set) var pending: [NodeID: Int] = [:]
    /// Members by sends left (index), newest last; may hold stale copies.
    private var buckets: [[NodeID]] = []
    private var stored = 0

    var isEmpty: Bool { pending.isEmpty }
    var count: Int { pending.count }

    /// How many times a change is piggybacked in a view of `members` (this peer included):
    /// λ · ⌈log10(members + 1)⌉, at least λ.
    static func transmissions(members: Int) -> Int {
        let target = UInt64(clamping: members) &+ 1
        var digits = 0
        var power: UInt64 = 1
        while power < target, digits < 19 {
            power *= 10
            digits += 1
        }
        return multiplier * max(1, digits)
    }

    /// Queues (or re-queues) the change of `member`. When that makes the queue hold more than
    /// `limit` members, the one with fewest sends left (the oldest change among them) is
    /// dropped, and this returns true.
    mutating func enqueue(_ member: NodeID, members: Int, limit: Int) -> Bool {
        put(member, left: Self.transmissions(members: members))
        guard pending.count > max(1, limit) else { return false }
        dropFewestLeft(keeping: member)
        return true
    }

    /// Drops a member queued with the fewest sends left, never `kept` (the change just queued).
    private mutating func dropFewestLeft(keeping kept: NodeID) {
        for bucket in buckets.indices.dropFirst() {
            var skipped = false
            while let member = buckets[bucket].popLast() {
                stored -= 1
                guard pending[member] == bucket else { continue }
                guard member != kept else {
                    skipped = true
                    continue
                }
                pending[member] = nil
                if skipped { put(kept, left: bucket) }
                return
            }
            if skipped { put(kept, left: bucket) }
        }
    }

    /// Forgets a member (reaped).
    mutating func remove(_ member: NodeID) {
        pending[member] = nil
        releaseIfEmpty()
    }

    /// Once nothing is pending, every queued copy is stale: drop the tables and their capacity
    /// (a join storm at 10,000 left ~50 bytes per member per peer behind for good).
    private mutating func releaseIfEmpty() {
        if pending.isEmpty, stored > 0 || pending.capacity > 0 { self = Dissemination() }
    }

    /// Takes up to `limit` members to piggyback, those with most sends left first (newest
    /// first among equals), and counts one send for each.
    mutating func take(_ limit: Int) -> [NodeID] {
        guard limit > 0, !pending.isEmpty else { return [] }
        var picked: [(member: NodeID, left: Int)] = []
        var bucket = buckets.count - 1
        while picked.count < limit, bucket > 0 {
            guard let member = buckets[bucket].popLast() else {
                bucket -= 1
                continue
            }
            stored -= 1
            // A stale copy (re-queued since, or removed) or one already picked this time.
            guard pending[member] == bucket, !picked.contains(where: { $0.member == member }) else { continue }
            picked.append((member, bucket))
        }
        // Counted after picking, so that a member is not picked twice in one take.
        for (member, left) in picked {
            if left > 1 { put(member, left: left - 1) } else { pending[member] = nil }
        }
        while buckets.last?.isEmpty == true { buckets.removeLast() }
        releaseIfEmpty()
        return picked.map(\.member)
    }

    private mutating func put(_ member: NodeID, left: Int) {
        pending[member] = left
        while buckets.count <= left { buckets.append([]) }
        buckets[left].append(member)
        stored += 1
        // Stale copies could pile up under churn: rebuild when they outnumber live ones.
        if stored > 2 * pending.count + 64 { rebuild() }
    }

    private mutating func rebuild() {
        buckets = buckets.map { _ in [] }
        for (member, left) in pending.sorted(by: { $0.key < $1.key }) { buckets[left].append(member) }
        stored = pending.count
    }
}
