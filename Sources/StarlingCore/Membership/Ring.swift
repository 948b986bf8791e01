/// A hash ring of the members a peer holds alive, itself included (Protocol.md §6.1.3): the
/// `count` responders to a newcomer, or the witnesses of a suspect, are the first members
/// clockwise from the key's position. Every peer that holds the same view names the same
/// members without a message, a member joining or leaving changes the choice for few keys, and
/// a choice costs O(1) on average (256 sorted buckets by the position's top byte) where a
/// rendezvous scan of the whole view cost O(n) for every newcomer heard — O(n²) for a cold start.
struct Ring: Sendable {
    /// Ids sorted by (position, id) in 256 buckets by the position's top byte. Only part of
    /// each position is kept (`keys`): 20 bytes a member where (position, id) points took 24,
    /// in every peer's ring (Protocol.md A.2 item 3).
    private var buckets: [[NodeID]] = Array(repeating: [], count: 256)
    /// Bits 24–55 of each id's position (``key(_:)``), beside `buckets`: a search compares
    /// these 4 bytes and computes a position again only on a tie. Computing one (16 dependent
    /// multiplies) for each step of every search, with the search, was a fifth of a warm start.
    private var keys: [[UInt32]] = Array(repeating: [], count: 256)
    private(set) var count = 0

    init() {}

    /// A ring of `members`.
    init(_ members: some Sequence<NodeID>) {
        for id in members { insert(id) }
    }

    /// A node's place on the ring: FNV-1a 64 over its 16 big-endian bytes, then SplitMix64's
    /// finalizer (FNV alone spreads ids that differ in their last bits too little).
    static func position(_ id: NodeID) -> UInt64 {
        var hash = fnv1a(0xcbf2_9ce4_8422_2325, id.high)
        hash = fnv1a(hash, id.low)
        hash = (hash ^ (hash >> 30)) &* 0xBF58_476D_1CE4_E5B9
        hash = (hash ^ (hash >> 27)) &* 0x94D0_49BB_1331_11EB
        return hash ^ (hash >> 31)
    }

    /// FNV-1a 64 continued over `word`'s 8 big-endian bytes, unrolled: a loop over the shifts
    /// kept its counter and branch in the multiplies' chain.
    @inline(__always) private static func fnv1a(_ start: UInt64, _ word: UInt64) -> UInt64 {
        let prime: UInt64 = 0x0000_0100_0000_01B3
        var hash = start
        hash = (hash ^ (word >> 56)) &* prime
        hash = (hash ^ (word >> 48 & 0xFF)) &* prime
        hash = (hash ^ (word >> 40 & 0xFF)) &* prime
        hash = (hash ^ (word >> 32 & 0xFF)) &* prime
        hash = (hash ^ (word >> 24 & 0xFF)) &* prime
        hash = (hash ^ (word >> 16 & 0xFF)) &* prime
        hash = (hash ^ (word >> 8 & 0xFF)) &* prime
        return (hash ^ (word & 0xFF)) &* prime
    }

    /// The bits of `position` that order ids within a bucket, after its top byte.
    private static func key(_ position: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: position >> 24) }

    mutating func insert(_ id: NodeID) {
        let position = Self.position(id)
        let bucket = Int(position >> 56)
        let index = insertionIndex(of: position, id, in: bucket)
        guard index == buckets[bucket].count || buckets[bucket][index] != id else { return }
        // Grown by a few places at a time: ~40 ids a bucket at 10,000, where doubling left a
        // third of each bucket empty.
        if buckets[bucket].count == buckets[bucket].capacity {
            let room = buckets[bucket].count + Swift.max(4, buckets[bucket].count / 8)
            buckets[bucket].reserveCapacity(room)
            keys[bucket].reserveCapacity(room)
        }
        buckets[bucket].insert(id, at: index)
        keys[bucket].insert(Self.key(position), at: index)
        count += 1
    }

    mutating func remove(_ id: NodeID) {
        let position = Self.position(id)
        let bucket = Int(position >> 56)
        let index = insertionIndex(of: position, id, in: bucket)
        guard index < buckets[bucket].count, buckets[bucket][index] == id else { return }
        buckets[bucket].remove(at: index)
        keys[bucket].remove(at: index)
        count -= 1
    }

    /// The member at place `index` (0..<count) in ring order: a uniform pick among the alive
    /// for a random index, in O(256) without a list of them beside the ring.
    func member(at index: Int) -> NodeID? {
        guard index >= 0 else { return nil }
        var rest = index
        for bucket in buckets {
            if rest < bucket.count { return bucket[rest] }
            rest -= bucket.count
        }
        return nil
    }

    /// A member at random other than `me` and `excluded` (nil when there is none, or when
    /// `tries` draws, one number from `rng` each, all hit those two).
    func randomMember(excluding me: NodeID, _ excluded: NodeID? = nil, tries: Int, rng: inout SplitMix64) -> NodeID? {
        guard count > 1 else { return nil }
        for _ in 0..<max(1, tries) {
            guard let id = member(at: Int(rng.next() % UInt64(count))) else { continue }
            if id != me, id != excluded { return id }
        }
        return nil
    }

    /// The first `count` members clockwise from `key`'s position, `key` and `excluded` skipped.
    func successors(of key: NodeID, count wanted: Int, excluding excluded: NodeID? = nil) -> [NodeID] {
        guard wanted > 0 else { return [] }
        let position = Self.position(key)
        var first = Int(position >> 56)
        var index = insertionIndex(of: position, key, in: first)
        var picked: [NodeID] = []
        var visited = 0
        // At most one full turn: 256 buckets plus the one started in.
        while picked.count < wanted, visited <= 256 {
            let bucket = buckets[first]
            while index < bucket.count, picked.count < wanted {
                let id = bucket[index]
                if id != key, id != excluded, !picked.contains(id) { picked.append(id) }
                index += 1
            }
            first = (first + 1) & 0xFF
            index = 0
            visited += 1
        }
        return picked
    }

    /// Whether `member` is one of `successors(of: key, count: wanted)`. Every peer asks it of
    /// every ANNOUNCE and HELLO it hears (n² times in a cold start), and for nearly all the
    /// answer is no: buckets strictly between the key's and the member's that hold `wanted` ids
    /// settle it without a search or a list.
    func isSuccessor(_ member: NodeID, of key: NodeID, count wanted: Int) -> Bool {
        guard wanted > 0, member != key else { return false }
        let keyPosition = Self.position(key), memberPosition = Self.position(member)
        let keyBucket = Int(keyPosition >> 56), memberBucket = Int(memberPosition >> 56)
        if keyBucket != memberBucket || (memberPosition, member) < (keyPosition, key) {
            var between = 0
            var bucket = (keyBucket + 1) & 0xFF
            while bucket != memberBucket {
                between += buckets[bucket].count
                if between >= wanted { return false }
                bucket = (bucket + 1) & 0xFF
            }
        }
        return successors(of: key, count: wanted).contains(member)
    }

    /// Where (position, id) goes in bucket `bucket`, sorted by (position, id): by the stored
    /// keys, and on a tie by positions computed again. The top byte is the bucket's, so order
    /// by key is order by position whenever the keys differ.
    private func insertionIndex(of position: UInt64, _ id: NodeID, in bucket: Int) -> Int {
        let key = Self.key(position)
        let keys = keys[bucket]
        var low = 0
        var high = keys.count
        while low < high {
            let middle = (low + high) / 2
            let before: Bool
            if keys[middle] != key {
                before = keys[middle] < key
            } else {
                let other = buckets[bucket][middle]
                before = (Self.position(other), other) < (position, id)
            }
            if before { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

/// Protocol.md §6.1.3's ring choice for a program outside the core (the conformance suite
/// predicts which peers a suspect's witnesses are).
public enum RingChoice {
    /// The first `count` of `members` clockwise from `key`'s place on the ring, `key` and
    /// `excluded` skipped: a suspect's witnesses (its first accuser excluded), a newcomer's
    /// responders. `members` are the alive members of a view, its holder included.
    public static func successors(of key: NodeID, among members: some Sequence<NodeID>, count: Int, excluding excluded: NodeID? = nil) -> [NodeID] {
        Ring(members).successors(of: key, count: count, excluding: excluded)
    }
}
