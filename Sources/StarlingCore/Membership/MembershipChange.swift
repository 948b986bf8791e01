/// A change of the membership view that other components act on, returned as a value by the
/// ``Membership`` call that made it; the coordinator (``Peer``) hands it on.
enum MembershipChange: Sendable, Equatable {
    /// The member went dead or left (it was alive or suspect).
    case gone(NodeID)
}
