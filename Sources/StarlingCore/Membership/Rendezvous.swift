/// Rendezvous (highest-random-weight) choice of a few members for a key (Protocol.md appendix
/// A.3, A.6): every peer that holds the same view picks the same ones without a message, and a
/// member joining or leaving changes the choice of few keys. The witnesses of a suspicion and
/// the responders to a HELLO are chosen this way, so that a change is checked by three members,
/// not by all.
enum Rendezvous {
    /// FNV-1a 64 over the key's id then the candidate's id, both as 16 big-endian bytes, then
    /// SplitMix64's finalizer: FNV alone mixes ids that differ in their last bits too little to
    /// spread the choices evenly.
    static func weight(key: NodeID, candidate: NodeID) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for word in [key.high, key.low, candidate.high, candidate.low] {
            for shift in stride(from: 56, through: 0, by: -8) {
                hash ^= (word >> UInt64(shift)) & 0xFF
                hash &*= 0x0000_0100_0000_01B3
            }
        }
        hash = (hash ^ (hash >> 30)) &* 0xBF58_476D_1CE4_E5B9
        hash = (hash ^ (hash >> 27)) &* 0x94D0_49BB_1331_11EB
        return hash ^ (hash >> 31)
    }

    /// The `count` candidates of lowest weight for `key` (ties by id), in that order.
    static func choose(_ count: Int, for key: NodeID, among candidates: some Sequence<NodeID>) -> [NodeID] {
        candidates.lazy.filter { $0 != key }
            .map { (weight: weight(key: key, candidate: $0), id: $0) }
            .smallest(count) { ($0.weight, $0.id) < ($1.weight, $1.id) }
            .map(\.id)
    }

    /// Whether `me` is among the `count` chosen for `key`: the same answer as
    /// `choose(count, …).contains(me)`, counting only the candidates that weigh less than `me`.
    static func isChosen(_ me: NodeID, count: Int, for key: NodeID, among candidates: some Sequence<NodeID>) -> Bool {
        guard me != key, count > 0 else { return false }
        let mine = (weight(key: key, candidate: me), me)
        var lighter = 0
        for candidate in candidates where candidate != key && candidate != me {
            if (weight(key: key, candidate: candidate), candidate) < mine {
                lighter += 1
                if lighter >= count { return false }
            }
        }
        return true
    }
}
