/// What other components may read of the membership view: a value taken just before the call
/// that reads it, never a handle on ``Membership`` itself.
struct MemberView: Sendable {
    let members: MemberTable
    let me: NodeID
    /// Members alive or suspect, this peer included.
    let liveCount: Int
    /// Members with status alive, this peer not included.
    let aliveCount: Int
    let multicast: Bool
    let seeds: [Endpoint]
    /// The members held alive and this peer, on the hash ring of §6.1.3.
    var ring = Ring()
    /// What this peer measured of its paths to the members (nil before any answered a PING).
    var paths: PathSummary?

    /// A leader can only be this peer or a member it holds alive or suspect.
    func isViable(_ node: NodeID) -> Bool { node == me || members[node]?.isLive == true }

    func isLive(_ node: NodeID) -> Bool { members[node]?.isLive == true }

    /// Where a member listens, as this peer knows it.
    func endpoint(of node: NodeID) -> Endpoint? { members[node]?.endpoint }

    /// The first `count` of the members held alive and this peer clockwise on the ring from
    /// `key` (Protocol.md §6.1.3; the electors of §6.4).
    func ringSuccessors(of key: NodeID, count: Int) -> [NodeID] { ring.successors(of: key, count: count) }

    /// Where group messages go: the group, or every live member when multicast is off, each
    /// address once, in the view's order and then the seeds' (not a set's order, which is
    /// seeded per process: the send budget cuts the tail of this list, §6.6).
    func groupDestinations() -> [Destination] {
        if multicast { return [.group] }
        var seen = Set<Endpoint>()
        return (members.values.lazy.filter(\.isLive).map(\.endpoint) + seeds).compactMap { seen.insert($0).inserted ? .peer($0) : nil }
    }

    /// ``groupDestinations()`` and, with multicast, the seeds too (announce and hello).
    func searchDestinations() -> [Destination] {
        var destinations = groupDestinations()
        if multicast { destinations.append(contentsOf: seeds.map { .peer($0) }) }
        return destinations
    }
}
