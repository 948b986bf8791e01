import StarlingCore

/// Invariant checks over a simulation (issue: simulator). Each returns the violations found, as
/// sentences that name the nodes and the virtual time.
extension Simulator {
    /// Indices of the nodes that `index` lists as live (alive, or suspect and being probed).
    public func aliveView(of index: Int) -> Set<Int> {
        Set(nodes[index].peer.members.values.filter(\.isLive).compactMap { indexOf[$0.id] })
    }

    /// Nodes that are up and not partitioned away from `index`.
    public func reachable(from index: Int) -> Set<Int> {
        Set(nodes.indices.filter { other in
            other != index && nodes[other].isUp && (partition.isEmpty || (partition[other] ?? -1) == (partition[index] ?? -1))
        })
    }

    /// Whether every up node counts as many live members as it can reach: O(n), where
    /// ``viewViolations()`` compares whole views (O(n²), ~10⁸ lookups at 10,000). Equal counts
    /// do not prove equal views; a run at scale waits on this, then checks the views.
    public func viewCountsAgree() -> Bool {
        // Counted in place: a filtered array of nodes would copy every node's core.
        var groupSize: [Int: Int] = [:]
        for node in nodes where node.isUp { groupSize[partition[node.index] ?? -1, default: 0] += 1 }
        return nodes.allSatisfy { !$0.isUp || $0.peer.liveCount == groupSize[partition[$0.index] ?? -1] }
    }

    /// Whether every up node lists exactly the up nodes it can reach as alive: the O(n) count
    /// check first, the O(n²) full check only once the counts agree.
    public func viewsAgree() -> Bool { viewCountsAgree() && viewViolations().isEmpty }

    /// Whether no up node holds a newcomer back from its published view (Protocol.md §6.1.8).
    public func viewsPublished() -> Bool { nodes.allSatisfy { !$0.isUp || !$0.peer.holdsNewcomersBack } }

    /// Every up node lists exactly the up nodes it can reach as alive.
    public func viewViolations() -> [String] {
        var problems: [String] = []
        for index in nodes.indices where nodes[index].isUp {
            let counted = nodes[index].peer.members.values.filter(\.isLive).count + 1
            if counted != nodes[index].peer.liveCount {
                problems.append("node-\(index) live counter \(nodes[index].peer.liveCount) but \(counted) live members")
            }
            // Nothing held back: every live member is in the published view (§6.1.8).
            let peer = nodes[index].peer
            if !peer.holdsNewcomersBack, let hidden = peer.members.values.first(where: { $0.isLive && !$0.isPublished }) {
                problems.append("node-\(index) holds nothing back but never published live \(hidden.id.short)")
            }
            let view = aliveView(of: index)
            let expected = reachable(from: index)
            if view != expected {
                problems.append("t=\(now / 1_000_000)ms node-\(index) sees \(view.count) alive, expected \(expected.count): missing \(expected.subtracting(view).sorted().prefix(5)), extra \(view.subtracting(expected).sorted().prefix(5))")
            }
        }
        return problems
    }

    /// Datagrams a node built but could not encode (a page sized wrong, a value out of
    /// range): every such drop is a bug (issue 14 item 6).
    public func encodeViolations() -> [String] {
        nodes.flatMap { node in
            // By reason, not in the dictionary's order: the same run reads the same in every process.
            node.peer.counters.drops.filter { $0.key.hasPrefix("encode_") }.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                .map { "node-\(node.index) dropped \($0.value) datagram(s) as \($0.key)" }
        }
    }

    /// Dead verdicts about nodes that were up, reachable and running at the time (and had been
    /// for the whole suspicion window), i.e. false deaths. Verdicts by or about a paused node,
    /// or a node with a loss of its own (`degrade`), are not counted: from such a node's view
    /// everyone is silent.
    public func falseDeaths(window: UInt64 = 2_000_000_000) -> [String] {
        var problems: [String] = []
        for node in nodes {
            for (time, event) in node.events {
                guard case .statusChanged(let name, let id, _, .dead) = event, let subject = indexOf[id] else { continue }
                if let down = downSince[subject], down <= time { continue }
                if nodes[subject].peer.config.id != id { continue }
                // Within `window` after the disturbance, written so that an open one (`to` = .max) cannot overflow.
                let excused = disturbed.contains {
                    ($0.node == subject || $0.node == node.index || $0.node == -1) && $0.from <= time && (time <= $0.to || time - $0.to <= window)
                }
                if !excused { problems.append("t=\(time / 1_000_000)ms node-\(node.index) declared \(name) dead while it was up") }
            }
        }
        return problems
    }

    /// Every up node holds the same revoked set as the first up node.
    public func revokedViolations() -> [String] {
        let up = nodes.filter(\.isUp)
        guard let first = up.first else { return [] }
        let digest = first.peer.revoked.digest
        return up.filter { $0.peer.revoked.digest != digest }.map {
            "node-\($0.index) holds \($0.peer.revoked.count) revoked ids, node-\(first.index) holds \(first.peer.revoked.count)"
        }
    }

    /// One leader per connected group: every up node of a group names the same leader for `topic`.
    public func leaderViolations(_ topic: String) -> [String] {
        var byGroup: [Int: Set<String>] = [:]
        for node in nodes where node.isUp {
            let leader = node.peer.leader(of: topic)
            byGroup[partition[node.index] ?? -1, default: []].insert("\(leader.name ?? "none")@\(leader.term)")
        }
        return byGroup.filter { $0.value.count != 1 }.sorted { $0.key < $1.key }.map { "group \($0.key) disagrees on \(topic): \($0.value.sorted())" }
    }

    /// Quorum mode: never two different leaders announced for the same term.
    public func termViolations(_ topic: String) -> [String] {
        var leadersByTerm: [UInt64: Set<NodeID>] = [:]
        for node in nodes {
            for (_, event) in node.events {
                if case .leaderChanged(let t, _, let id?, let term) = event, t == topic { leadersByTerm[term, default: []].insert(id) }
            }
        }
        return leadersByTerm.filter { $0.value.count > 1 }.sorted { $0.key < $1.key }.map { "term \($0.key) of \(topic) had \($0.value.count) leaders" }
    }

    /// First virtual time at which `condition` holds, checking every `step`; nil if it never does
    /// before `limit`.
    public func runUntil(limit: UInt64, step: UInt64 = 10_000_000, _ condition: () -> Bool) -> UInt64? {
        let end = now + limit
        while now < end {
            if condition() { return now }
            advance(step)
        }
        return condition() ? now : nil
    }

    /// Datagrams sent per node per virtual second so far.
    public var messagesPerNodePerSecond: Double {
        now == 0 || nodes.isEmpty ? 0 : Double(sent) / Double(nodes.count) / (Double(now) / 1e9)
    }
}
