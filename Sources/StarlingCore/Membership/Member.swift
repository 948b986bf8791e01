/// One row of a peer's membership view.
public struct Member: Sendable, Equatable {
    public var id: NodeID
    public var name: String
    public var endpoint: Endpoint
    public var incarnation: UInt32
    public var status: MemberStatus
    /// Monotonic time of the last datagram received from this member itself.
    public var lastHeard: UInt64
    public var statusSince: UInt64
    /// Highest Lamport stamp seen on this member's datagrams.
    public var clock: UInt64 = 0
    /// The revoked-set digest of its last PING or ACK, and how many in a row differed from ours.
    public var revoked: SetDigest = .empty
    var digestMismatches = 0

    public var isLive: Bool { status == .alive || status == .suspect }

    func entry() -> MemberEntry {
        MemberEntry(id: id, incarnation: incarnation, status: status, endpoint: endpoint, name: name)
    }
}
