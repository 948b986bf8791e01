/// One row of a peer's membership view.
public struct Member: Sendable, Equatable {
    public var id: NodeID
    public var name: String
    public var endpoint: Endpoint
    public var incarnation: UInt32
    public var status: MemberStatus
    public var intervalMillis: UInt32
    /// Monotonic time of the last datagram received from this member itself.
    public var lastHeard: UInt64
    public var statusSince: UInt64
    /// Highest Lamport stamp seen on this member's datagrams.
    public var clock: UInt64 = 0
    /// The revoked-set digest from its last beat, and how many beats in a row it differed.
    public var revoked: SetDigest = .empty
    var digestMismatches = 0
    var probe: ProbeState?

    struct ProbeState: Sendable, Equatable {
        var probeID: UInt32
        var nextAt: UInt64
        var deadline: UInt64
    }

    var interval: UInt64 { UInt64(Self.clampInterval(intervalMillis)) * 1_000_000 }

    /// A sender's interval as this peer judges it: within ``Limits/intervalMillis``.
    static func clampInterval(_ millis: UInt32) -> UInt32 {
        min(max(millis, Limits.intervalMillis.lowerBound), Limits.intervalMillis.upperBound)
    }

    /// Moves the silence clock forward by a stall of this peer's own loop.
    mutating func shift(by gap: UInt64) {
        lastHeard &+= gap
        probe?.deadline &+= gap
        probe?.nextAt &+= gap
    }

    public var isLive: Bool { status == .alive || status == .suspect }

    func entry() -> MemberEntry {
        MemberEntry(id: id, incarnation: incarnation, status: status, endpoint: endpoint,
            intervalMillis: intervalMillis, name: name)
    }
}

/// Counters exposed by `stats` (Protocol.md §5.2).
public struct Counters: Sendable, Equatable {
    public var datagramsIn: UInt64 = 0
    public var datagramsOut: UInt64 = 0
    public var bytesIn: UInt64 = 0
    public var bytesOut: UInt64 = 0
    public var drops: [String: UInt64] = [:]

    mutating func drop(_ reason: String) { drops[reason, default: 0] &+= 1 }
}

/// Sliding replay window per sender (Protocol.md §7.3): the highest sequence seen and a bitmap of
/// the `width` sequences below it.
struct ReplayWindow: Sendable {
    static let width: UInt64 = 256
    var highest: UInt64 = 0
    var seen: [UInt64] = [0, 0, 0, 0]
    /// When this sender was last accepted (to forget the least recent when the table is full).
    var lastUsed: UInt64 = 0

    /// Records `sequence`; false when it is a duplicate or older than the window.
    mutating func accept(_ sequence: UInt64) -> Bool {
        if sequence > highest {
            let shift = sequence - highest
            if shift >= Self.width {
                seen = [0, 0, 0, 0]
            } else {
                for _ in 0..<shift { shiftOne() }
            }
            highest = sequence
            seen[0] |= 1
            return true
        }
        let back = highest - sequence
        guard back < Self.width else { return false }
        let word = Int(back / 64)
        let bit: UInt64 = 1 << (back % 64)
        if seen[word] & bit != 0 { return false }
        seen[word] |= bit
        return true
    }

    private mutating func shiftOne() {
        seen[3] = seen[3] << 1 | seen[2] >> 63
        seen[2] = seen[2] << 1 | seen[1] >> 63
        seen[1] = seen[1] << 1 | seen[0] >> 63
        seen[0] <<= 1
    }
}
