/// The queue of membership changes that ride on PING and ACK (Protocol.md appendix A.4): each
/// change is piggybacked λ · ⌈log10(n + 1)⌉ times after its one multicast, so that members that
/// missed the multicast still hear it within a few periods. One entry per member (its newest
/// state replaces an older one); the entries sent least often go first, so a fresh change is
/// never starved by old ones. Its size is bounded by the members table.
struct Dissemination: Sendable {
    /// Lifeguard/memberlist's retransmit multiplier (λ).
    static let multiplier = 3

    /// Member → sends left.
    private(set) var pending: [NodeID: Int] = [:]

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

    /// Queues (or re-queues) the change of `member`.
    mutating func enqueue(_ member: NodeID, members: Int) {
        pending[member] = Self.transmissions(members: members)
    }

    /// Forgets a member (reaped).
    mutating func remove(_ member: NodeID) { pending[member] = nil }

    /// Takes up to `limit` members to piggyback, those with most sends left first (ties by id,
    /// so every peer behaves alike), and counts one send for each.
    mutating func take(_ limit: Int) -> [NodeID] {
        guard limit > 0, !pending.isEmpty else { return [] }
        let picked = pending.smallest(limit) { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }
        for (member, left) in picked {
            pending[member] = left > 1 ? left - 1 : nil
        }
        return picked.map(\.key)
    }
}
