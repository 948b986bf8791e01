/// One row of a peer's membership view.
///
/// Stored fields are declared widest first so the row packs into 84 bytes, 88 a stride (it was 96, with an alive-list index
/// kept beside it; 72 before the endpoint held 16 address bytes for IPv6, issue 19): a simulator holds one per member per peer,
/// 10,000 × 10,000 of them (Protocol.md A.2 item 3).
public struct Member: Sendable, Equatable {
    public var id: NodeID
    public var name: String
    /// Monotonic time of the last datagram received from this member itself.
    public var lastHeard: UInt64
    public var statusSince: UInt64
    /// Highest Lamport stamp seen on this member's datagrams.
    public var clock: UInt64 = 0
    public var incarnation: UInt32
    public var endpoint: Endpoint
    public var status: MemberStatus
    /// Bits 0–4: how many PINGs or ACKs in a row carried a revoked-set digest other than ours
    /// (capped; only "two or more" matters). Bit 5: the member came back alive from a suspicion
    /// (at `statusSince`). Bit 6: the member is in the published view (§6.1.8). Bit 7: the
    /// member is in the probe order. One byte of the row's padding, where a set of the ids in
    /// the probe order cost ~30 bytes per member.
    private var flags: UInt8 = 0

    init(id: NodeID, name: String, endpoint: Endpoint, incarnation: UInt32, status: MemberStatus,
         lastHeard: UInt64, statusSince: UInt64, clock: UInt64 = 0) {
        self.id = id
        self.name = name
        self.lastHeard = lastHeard
        self.statusSince = statusSince
        self.clock = clock
        self.incarnation = incarnation
        self.endpoint = endpoint
        self.status = status
    }

    /// Equal as a member row; where it sits in the alive list and the probe order is not part of it.
    public static func == (a: Member, b: Member) -> Bool {
        a.id == b.id && bytesEqual(a.name, b.name) && a.lastHeard == b.lastHeard
            && a.statusSince == b.statusSince && a.clock == b.clock && a.incarnation == b.incarnation
            && a.endpoint == b.endpoint && a.status == b.status && a.digestMismatches == b.digestMismatches
            && a.revived == b.revived
    }

    /// How many PINGs or ACKs in a row carried a revoked-set digest other than ours (at most 31).
    var digestMismatches: UInt8 {
        get { flags & 0x1F }
        set { flags = (flags & 0xE0) | min(newValue, 0x1F) }
    }

    /// The member is alive because it came back from a suspicion (a refutation, or an answer
    /// to a probe), at `statusSince`: a member suspected again soon after is gossiped rather
    /// than multicast (Protocol.md §6.1.5).
    var revived: Bool {
        get { flags & 0x20 != 0 }
        set { flags = (flags & 0xDF) | (newValue ? 0x20 : 0) }
    }

    /// The member is in the published view: the application has been told it joined
    /// (Protocol.md §6.1.8; ``Membership/store(_:for:)`` keeps the count of such rows exact).
    public internal(set) var isPublished: Bool {
        get { flags & 0x40 != 0 }
        set { flags = (flags & 0xBF) | (newValue ? 0x40 : 0) }
    }

    /// The member is in ``Probing``'s round robin (``Membership/store(_:for:)`` keeps it exact).
    var probeListed: Bool {
        get { flags & 0x80 != 0 }
        set { flags = (flags & 0x7F) | (newValue ? 0x80 : 0) }
    }

    public var isLive: Bool { status == .alive || status == .suspect }

    func entry() -> MemberEntry {
        MemberEntry(id: id, incarnation: incarnation, status: status, endpoint: endpoint, name: name)
    }
}
