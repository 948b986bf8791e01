/// The revoked-id set (Protocol.md §3.2, §6.3): bounded, expiring by wall-clock revoke time, with
/// per-bucket digests kept up to date on every change so that sync can find what differs.
public struct RevokedSet: Sendable {
    public let maxCount: Int
    public let maxAgeMillis: UInt64
    /// Keyed by bytes (``ByteString``): two ids are the same id only when their bytes are.
    private(set) var entries: [ByteString: UInt64] = [:]
    private(set) var buckets: [SetDigest] = Array(repeating: .empty, count: Limits.digestBuckets)
    /// The sum of `buckets`, kept beside them: every datagram a peer receives reads it, and
    /// summing 64 buckets of a peer's cold memory each time was a simulated peer's hot spot.
    public private(set) var digest = SetDigest.empty
    private var sortedCache: [String]?
    /// Changes not yet taken by the shell's durable log; nil unless the shell asked (RevokedSet+Journal.swift).
    var journal: RevokedJournal?

    public init(maxCount: Int = 50_000, maxAgeMillis: UInt64 = 3 * 3_600_000) {
        self.maxCount = maxCount
        self.maxAgeMillis = maxAgeMillis
    }

    public var count: Int { entries.count }

    /// Makes room for `count` ids at once (a sync that knows how many are coming), so the table
    /// is not rebuilt again and again while pages arrive.
    public mutating func reserve(_ count: Int) {
        let wanted = min(count, maxCount)
        if wanted > entries.capacity { entries.reserveCapacity(wanted) }
    }
    public var isEmpty: Bool { entries.isEmpty }

    public var bucketDigests: [SetDigest] { buckets }

    public func revokedAt(_ id: String) -> UInt64? { entries[ByteString(id)] }
    public func contains(_ id: String) -> Bool { entries[ByteString(id)] != nil }

    /// How far in the future of the receiver's wall clock a revoke time may lie (Protocol.md
    /// §6.3.4): later times are lowered to this, so that no entry outlives its age by more.
    public static let maxFutureSkewMillis: UInt64 = 60_000

    /// FNV-1a 64 of the id's UTF-8 bytes; the top six bits pick its bucket.
    public static func hash(_ id: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    public static func bucket(of id: String) -> Int { Int(hash(id) >> 58) }

    /// Merges one entry: an unknown id is added, a known one keeps the later revoke time.
    /// Entries already past their age are refused; a time beyond ``maxFutureSkewMillis`` ahead
    /// of `nowMillis` is lowered to that. Returns true when the set changed.
    @discardableResult
    public mutating func insert(_ id: String, revokedAtMillis: UInt64, nowMillis: UInt64) -> Bool {
        let (ceiling, over) = nowMillis.addingReportingOverflow(Self.maxFutureSkewMillis)
        let revokedAtMillis = over ? revokedAtMillis : min(revokedAtMillis, ceiling)
        let (expiry, wraps) = revokedAtMillis.addingReportingOverflow(maxAgeMillis)
        guard wraps || expiry > nowMillis else { return false }
        let key = ByteString(id)
        // One hash for the common case, a new id; a known id is put back if it was later.
        if let existing = entries.updateValue(revokedAtMillis, forKey: key) {
            if existing >= revokedAtMillis {
                entries[key] = existing
                return false
            }
            journal?.record(id, revokedAtMillis)
            return true
        }
        journal?.record(id, revokedAtMillis)
        let hash = Self.hash(id)
        let bucket = Int(hash >> 58)
        buckets[bucket].count &+= 1
        buckets[bucket].hash &+= hash
        digest.count &+= 1
        digest.hash &+= hash
        sortedCache = nil
        if entries.count > maxCount { evictOldest(nowMillis: nowMillis) }
        return true
    }

    private mutating func remove(_ key: ByteString) {
        guard entries.removeValue(forKey: key) != nil else { return }
        let hash = Self.hash(key.string)
        let bucket = Int(hash >> 58)
        buckets[bucket].count &-= 1
        buckets[bucket].hash &-= hash
        digest.count &-= 1
        digest.hash &-= hash
        sortedCache = nil
    }

    /// Drops the oldest entries down to 99 % of the bound, so eviction runs once per 1 % of
    /// inserts rather than on every insert.
    private mutating func evictOldest(nowMillis: UInt64) {
        let target = max(0, maxCount - max(1, maxCount / 100))
        let victims = entries.sorted { ($0.value, $0.key) < ($1.value, $1.key) }.prefix(entries.count - target)
        for victim in victims { remove(victim.key) }
    }

    /// Removes entries older than the maximum age. Returns how many went.
    @discardableResult
    public mutating func expire(nowMillis: UInt64) -> Int {
        let expired = entries.filter { $0.value <= nowMillis && nowMillis - $0.value >= maxAgeMillis }.map(\.key)
        for id in expired { remove(id) }
        return expired.count
    }

    /// UTF-8 byte order (Protocol.md §3.2).
    public static func precedes(_ a: String, _ b: String) -> Bool { bytesPrecede(a, b) }

    /// Ids in UTF-8 byte order, the order pages are served in.
    public mutating func sortedIDs() -> [String] {
        if let sortedCache { return sortedCache }
        let sorted = entries.keys.map(\.string).sorted(by: Self.precedes)
        sortedCache = sorted
        return sorted
    }

    /// A bit mask of the buckets worth pulling from a peer with these bucket digests: those that
    /// differ and where the peer holds at least as many ids. Where it holds fewer, it most likely
    /// lacks entries and will pull from us instead; if it also has some we lack, its count
    /// overtakes ours after that pull and the next round fetches them (Protocol.md §6.3).
    public func bucketsToPull(from other: [SetDigest]) -> UInt64 {
        var mask: UInt64 = 0
        for index in 0..<min(other.count, buckets.count) where other[index] != buckets[index] && other[index].count >= buckets[index].count {
            mask |= 1 << UInt64(index)
        }
        return mask
    }

    /// Entries after `cursor` and before `until` (empty: no bound) in byte order whose bucket is in
    /// `mask`, filling at most `budget` encoded bytes. Returns the entries and whether the range's
    /// end was reached.
    public mutating func page(after cursor: String, until: String = "", mask: UInt64, budget: Int) -> (entries: [RevokedEntry], last: Bool) {
        let ids = sortedIDs()
        var low = 0
        var high = ids.count
        if !cursor.isEmpty {
            while low < high {
                let mid = (low + high) / 2
                if Self.precedes(cursor, ids[mid]) { high = mid } else { low = mid + 1 }
            }
        }
        var out: [RevokedEntry] = []
        var used = 0
        var index = low
        while index < ids.count {
            let id = ids[index]
            if !until.isEmpty, !Self.precedes(id, until) { return (out, true) }
            if mask & (1 << UInt64(Self.bucket(of: id))) != 0 {
                let size = 9 + id.utf8.count
                if used + size > budget { return (out, false) }
                used += size
                out.append(RevokedEntry(id: id, revokedAtMillis: entries[ByteString(id)] ?? 0))
            }
            index += 1
        }
        return (out, true)
    }

    /// All entries, sorted by id (for listing and persistence).
    public mutating func allEntries() -> [RevokedEntry] {
        sortedIDs().map { RevokedEntry(id: $0, revokedAtMillis: entries[ByteString($0)] ?? 0) }
    }
}
