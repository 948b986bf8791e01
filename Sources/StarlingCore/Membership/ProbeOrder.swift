/// The order in which a peer probes the others (Protocol.md §6.1, version 2): a shuffled round
/// robin, as in SWIM §4.3. Each round visits every member once in a random order, then
/// reshuffles; a newcomer goes to a random place among those not yet visited this round. So
/// every member is probed at least once in any 2 · n consecutive picks, whatever the random
/// numbers — a bound on detection time that random picks alone do not give.
struct ProbeOrder: Sendable {
    private(set) var order: [NodeID] = []
    private var position = 0
    /// Ids that left the rotation in ``next(rng:keep:)``, until the owner takes them: the owner
    /// (``Membership``) marks which members are in, where a set here cost ~30 bytes per member
    /// per peer (Protocol.md A.2 item 3).
    private(set) var dropped: [NodeID] = []

    var count: Int { order.count }

    mutating func reserveCapacity(_ count: Int) { order.reserveCapacity(count) }

    /// Adds a member to the rotation; the caller makes sure it is not in already.
    mutating func insert(_ id: NodeID, rng: inout SplitMix64) {
        // Grown by an eighth, not twice: the order holds every live member of the view.
        if order.count == order.capacity { order.reserveCapacity(order.count + Swift.max(16, order.count / 8)) }
        order.append(id)
        // Swap it to a random place in the rest of this round (position…end).
        let span = UInt64(order.count - position)
        let place = position + Int(rng.next() % span)
        order.swapAt(place, order.count - 1)
    }

    /// The next member to probe. Members for which `keep` is false (gone from the view, dead,
    /// left) leave the rotation as they come up; nil when none is left.
    mutating func next(rng: inout SplitMix64, keep: (NodeID) -> Bool) -> NodeID? {
        while !order.isEmpty {
            if position >= order.count {
                // A round ends: reshuffle (Fisher–Yates) for the next.
                position = 0
                for index in stride(from: order.count - 1, to: 0, by: -1) {
                    order.swapAt(index, Int(rng.next() % UInt64(index + 1)))
                }
            }
            let id = order[position]
            if keep(id) {
                position += 1
                return id
            }
            // Remove by moving the last one here; it is looked at next, in this round.
            dropped.append(id)
            order.swapAt(position, order.count - 1)
            order.removeLast()
        }
        return nil
    }

    /// The ids that left the rotation since the last call.
    mutating func takeDropped() -> [NodeID] {
        guard !dropped.isEmpty else { return [] }
        defer { dropped = [] }
        return dropped
    }
}
