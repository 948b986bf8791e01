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
