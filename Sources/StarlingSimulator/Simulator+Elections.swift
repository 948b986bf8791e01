import StarlingCore

/// What the election figures read of a simulation (issue 16, Protocol.md §6.4).
extension Simulator {
    func countGroupSend(_ datagram: [UInt8], from index: Int) {
        guard datagram.count > 5 else { return }
        groupSentByType[datagram[5], default: 0] += 1
        guard [MessageType.candidacy, .leader, .vote].contains(where: { $0.rawValue == datagram[5] }),
              let message = try? Codec(keys: nodes[index].peer.config.keys).decode(datagram)
        else { return }
        switch message.payload {
        case .candidacy(let candidacy): groupElectionSentByTopic[candidacy.topic, default: 0] += 1
        case .leader(let leader): groupElectionSentByTopic[leader.topic, default: 0] += 1
        case .vote(let vote): groupElectionSentByTopic[vote.topic, default: 0] += 1
        default: break
        }
    }

    /// Election datagrams (CANDIDACY, LEADER, VOTE) about `topic` sent to the group so far,
    /// each counted once however many receive it.
    public func electionGroupDatagrams(_ topic: String) -> UInt64 { groupElectionSentByTopic[topic] ?? 0 }

    /// The leader every up node names for `topic`, when they all name the same one at the
    /// same term (nil otherwise, or when none has a leader).
    public func agreedLeader(_ topic: String) -> (id: NodeID, term: UInt64)? {
        var agreed: (id: NodeID, term: UInt64)?
        for node in nodes where node.isUp {
            let leader = node.peer.leader(of: topic)
            guard let id = leader.id else { return nil }
            if let agreed, agreed.id != id || agreed.term != leader.term { return nil }
            agreed = (id, leader.term)
        }
        return agreed
    }
}

/// One election as the simulator saw it (issue 16, Protocol.md §6.4).
public struct ElectionFigure: Sendable {
    /// CANDIDACY, LEADER and VOTE datagrams of the topic sent to the group, from the cause
    /// until agreement plus the settle time (under 2 s: re-announcements are not counted).
    public let groupDatagrams: UInt64
    /// Virtual nanoseconds from the cause (the `elect` call or the crash) to every up node
    /// naming the same leader.
    public let agreedAfter: UInt64
    /// Virtual nanoseconds from the first node that dropped the old leader (a re-election; the
    /// cause itself for an `elect`) to agreement: the election without failure detection.
    public let electedAfter: UInt64
    public let leader: NodeID
    public let term: UInt64
}

extension Simulator {
    /// Runs `cause` (an `elect` call, a crash) and then until every up node names the same
    /// leader for `topic` at a term above `afterTerm`, checking every millisecond; then
    /// `settle` more to count the datagrams that still follow. Nil if no agreement by `limit`.
    public func measureElection(_ topic: String, afterTerm: UInt64, limit: UInt64, settle: UInt64 = 500_000_000,
                                cause: () -> Void) -> ElectionFigure? {
        let before = electionGroupDatagrams(topic)
        let start = now
        let eventMarks = nodes.map(\.events.count)
        cause()
        guard runUntil(limit: limit, step: 1_000_000, { (agreedLeader(topic)?.term ?? 0) > afterTerm }) != nil,
              let agreed = agreedLeader(topic)
        else { return nil }
        let agreedAt = now
        // The first node that dropped the old leader (a leader loss), else the cause.
        var lost: UInt64?
        for (index, node) in nodes.enumerated() {
            for (time, event) in node.events.dropFirst(min(eventMarks[safe: index] ?? 0, node.events.count)) {
                if case .leaderChanged(let t, nil, nil, _) = event, t == topic { lost = min(lost ?? time, time) }
            }
        }
        advance(settle)
        return ElectionFigure(groupDatagrams: electionGroupDatagrams(topic) - before, agreedAfter: agreedAt - start,
                              electedAfter: agreedAt - (lost ?? start), leader: agreed.id, term: agreed.term)
    }
}

private extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
