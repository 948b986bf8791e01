/// Read-only looks at the components' tables, for tests that check bounds (issue 14).
extension Peer {
    var replay: [NodeID: ReplayWindow] { intake.replay }
    var relays: [UInt32: Membership.Relay] { membership.relays }
    var replaced: [NodeID: UInt64] { membership.replaced }
    var reaped: [NodeID: UInt64] { membership.reaped }
    var dissemination: [NodeID: Int] { membership.dissemination.pending }
    var suspicions: [NodeID: Membership.Held] { membership.suspicions }
    var requests: [UInt32: PendingRequest] { requester.requests }
    var recentRequests: RunOnceTable { responder.recent }
    var watchers: [Endpoint: Watcher] { responder.watchers }
    var pendingElectReplies: ElectWaiters { responder.electWaiters }
}

extension Peer {
    /// Newcomers this peer still owes a view update (§6.1.2): a cold start's last traffic.
    /// The benchmark measures "idle" only once no peer owes one.
    package var viewUpdatesPending: Int { membership.viewUpdates.count }
}
