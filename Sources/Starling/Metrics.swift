import StarlingCore
import StarlingPOSIX

// The `/metrics` page (README, "Metrics"): the core's counters and state, and what only the
// shell sees, in the Prometheus text exposition format 0.0.4. The core is frozen and counts
// neither probes, suspicions, refutations, elections nor stalls: the agent derives them from
// the actions the core returns (``MetricsCounters``), under the loop lock like the rest.

/// What the agent counts for `/metrics` from the core's actions: events it emits and probe
/// datagrams it sends. Kept in the loop state, updated by ``Agent/perform(_:state:now:immediate:)``.
struct MetricsCounters: Sendable {
    /// `statusChanged` to suspect: members this agent's view marked suspect (its own probes or
    /// what it heard).
    var suspicions: UInt64 = 0
    /// `refuted`: suspicions of this agent that it refuted (its incarnation went up).
    var refutations: UInt64 = 0
    /// PING datagrams sent (own probes, probes relayed for a PING_REQ, witness checks).
    var pingsSent: UInt64 = 0
    /// PING_REQ datagrams sent (one per helper asked to probe indirectly).
    var pingRequestsSent: UInt64 = 0
    /// `leader` events naming a leader, `leader` events without one, `no_quorum` events.
    var leadersAdopted: UInt64 = 0
    var leadersLost: UInt64 = 0
    var noQuorum: UInt64 = 0
    /// `stalled` events: gaps in this agent's own loop the core noticed, and the longest.
    var stalls: UInt64 = 0
    var longestStallMillis: UInt64 = 0
    /// From the loop's start to the end of mingle (`synced` or `alone`); nil until then.
    var syncNanos: UInt64?

    /// The message type byte of a datagram (Protocol.md §2.2: offset 5).
    private static let typeOffset = 5

    mutating func observe(_ actions: [Action], now: UInt64, startedAt: UInt64) {
        for action in actions {
            switch action {
            case .send(let bytes, _) where bytes.count > Self.typeOffset:
                if bytes[Self.typeOffset] == MessageType.ping.rawValue { pingsSent &+= 1 }
                if bytes[Self.typeOffset] == MessageType.pingRequest.rawValue { pingRequestsSent &+= 1 }
            case .emit(let event):
                observe(event, now: now, startedAt: startedAt)
            default:
                break
            }
        }
    }

    private mutating func observe(_ event: PeerEvent, now: UInt64, startedAt: UInt64) {
        switch event {
        case .statusChanged(_, _, _, .suspect): suspicions &+= 1
        case .refuted: refutations &+= 1
        case .leaderChanged(_, let leader, _, _): if leader == nil { leadersLost &+= 1 } else { leadersAdopted &+= 1 }
        case .noQuorum: noQuorum &+= 1
        case .stalled(let millis):
            stalls &+= 1
            longestStallMillis = max(longestStallMillis, millis)
        case .synced, .alone:
            if syncNanos == nil { syncNanos = now &- min(now, startedAt) }
        default: break
        }
    }
}

/// What a scrape reads under the loop lock: counts and copies, nothing rendered.
struct MetricsSnapshot: Sendable {
    var version: String
    var uptimeNanos: UInt64
    /// By ``MemberStatus`` raw value; this agent counts as alive (as in `stats`).
    var members: [Int]
    var counters: Counters
    var leaders: [(topic: String, leader: String?, term: UInt64)]
    var revoked: Int
    var synced: Bool
    var derived: MetricsCounters

    /// Borrows the state: copying it would retain and release every table of the core.
    init(_ state: borrowing Agent.LoopState, now: UInt64) {
        version = state.peer.config.version
        uptimeNanos = state.startedAt == 0 ? 0 : now &- min(now, state.startedAt)
        members = state.peer.publishedByStatus
        counters = state.peer.counters
        // Topics are bounded by the core (`topics_full`); ByteString sorts them as bytes.
        var leaders: [(topic: String, leader: String?, term: UInt64)] = []
        for key in state.peer.elections.keys.sorted() {
            let leader = state.peer.leader(of: key.string)
            leaders.append((key.string, leader.name, leader.term))
        }
        self.leaders = leaders
        revoked = state.peer.revoked.count
        synced = state.peer.isSynced
        derived = state.metrics
    }
}

extension Agent {
    /// Where `/metrics` is served (``Configuration/metrics`` with the port the kernel chose
    /// when it was 0); nil without metrics.
    public var metricsEndpoint: Endpoint? { metricsServer?.local }

    /// This agent's metrics in the Prometheus text format (version 0.0.4), as `GET /metrics`
    /// serves them: for an embedder that serves them itself. README lists every metric.
    public func metricsText() -> String {
        metricsText(server: metricsServer?.stats ?? MetricsServer.Stats())
    }

    /// Copies what it needs under the loop lock, then renders outside it.
    func metricsText(server: MetricsServer.Stats) -> String {
        let snapshot = loop.withLock { MetricsSnapshot($0, now: System.now().nanos) }
        var page = Exposition()
        page.add("starling_build_info", .gauge, "Always 1; the labels name the software version and the protocol version.",
            [([("version", snapshot.version), ("protocol", String(Limits.version))], .count(1))])
        page.add("starling_uptime_seconds", .gauge, "Seconds since the agent's loop started.", .seconds(snapshot.uptimeNanos))
        page.add("starling_members", .gauge, "Members in this agent's view by status, this agent included (as alive).",
            MemberStatus.allCases.map { ([("status", $0.name)], .count(UInt64(snapshot.members[Int($0.rawValue)]))) })
        let counters = snapshot.counters
        page.add("starling_datagrams_received_total", .counter, "Datagrams received (before any check).", .count(counters.datagramsIn))
        page.add("starling_datagrams_sent_total", .counter, "Datagrams sent.", .count(counters.datagramsOut))
        page.add("starling_received_bytes_total", .counter, "Bytes of the datagrams received.", .count(counters.bytesIn))
        page.add("starling_sent_bytes_total", .counter, "Bytes of the datagrams sent.", .count(counters.bytesOut))
        page.add("starling_drops_total", .counter, "Datagrams, requests and answers dropped, by reason (Protocol.md 5.1 and 5.2).",
            counters.drops.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }.map { ([("reason", $0.key)], .count($0.value)) })
        page.add("starling_send_failures_total", .counter, "Datagrams the kernel refused to send (lost as on the wire).",
            .count(sendFailures.load(ordering: .relaxed)))
        page.add("starling_poll_failures_total", .counter, "Times waiting for input failed (retried after a backoff).",
            .count(pollFailures.load(ordering: .relaxed)))
        page.add("starling_events_dropped_total", .counter, "Events lost by embedded subscribers that fell behind.", .count(droppedEvents))
        let derived = snapshot.derived
        page.add("starling_suspicions_total", .counter, "Times a member was marked suspect in this agent's view.", .count(derived.suspicions))
        page.add("starling_refutations_total", .counter, "Suspicions of this agent that it refuted.", .count(derived.refutations))
        page.add("starling_probes_sent_total", .counter,
            "Probe datagrams sent: ping (own probes, relayed probes, witness checks), ping_req (helpers asked to probe).",
            [([("type", "ping")], .count(derived.pingsSent)), ([("type", "ping_req")], .count(derived.pingRequestsSent))])
        page.add("starling_elections_total", .counter,
            "Election outcomes seen: leader (a leader decided or learnt), no_leader (a leader lost), no_quorum.",
            [([("outcome", "leader")], .count(derived.leadersAdopted)), ([("outcome", "no_leader")], .count(derived.leadersLost)),
             ([("outcome", "no_quorum")], .count(derived.noQuorum))])
        page.add("starling_leader", .gauge, "1 for each topic with a known leader, naming it.",
            snapshot.leaders.compactMap { row in row.leader.map { ([("topic", row.topic), ("leader", $0)], .count(1)) } })
        page.add("starling_election_term", .gauge, "The current election term of each topic this agent knows.",
            snapshot.leaders.map { ([("topic", $0.topic)], .count($0.term)) })
        page.add("starling_revoked_ids", .gauge, "Revoked ids held.", .count(UInt64(snapshot.revoked)))
        page.add("starling_synced", .gauge, "1 once mingle finished (synced with neighbours, alone, or at its deadline).",
            .count(snapshot.synced ? 1 : 0))
        page.add("starling_sync_duration_seconds", .gauge, "Seconds from the start to the end of mingle; absent until then.",
            derived.syncNanos.map { [([], .seconds($0))] } ?? [])
        page.add("starling_event_loop_stalls_total", .counter,
            "Gaps in the agent's own loop longer than three protocol periods (at least 0.5 s).", .count(derived.stalls))
        page.add("starling_event_loop_stall_max_seconds", .gauge, "The longest of those gaps; 0 when there was none.",
            .seconds(derived.longestStallMillis.multipliedReportingOverflow(by: 1_000_000).overflow
                ? .max : derived.longestStallMillis * 1_000_000))
        addEventHandlerMetrics(to: &page)
        page.add("starling_resident_memory_bytes", .gauge, "Resident set size of the process.", .count(System.residentBytes()))
        page.add("starling_metrics_responses_total", .counter, "Responses of this endpoint by HTTP status code.",
            server.responses.sorted { $0.key < $1.key }.map { ([("code", String($0.key))], .count($0.value)) })
        page.add("starling_metrics_deadline_closes_total", .counter,
            "Connections to this endpoint closed at their deadline (slow or silent clients).", .count(server.deadlineCloses))
        page.add("starling_metrics_evictions_total", .counter,
            "Connections to this endpoint closed to make room before they had sent a request.", .count(server.evictions))
        return page.text
    }
}

/// The Prometheus text exposition format, version 0.0.4: for each metric a HELP and a TYPE
/// line, then one `name{label="value",...} number` line per sample.
struct Exposition {
    enum Kind: String { case counter, gauge }

    enum Value {
        case count(UInt64)
        /// Nanoseconds, written as seconds.
        case seconds(UInt64)
    }

    private(set) var text = ""

    mutating func add(_ name: String, _ kind: Kind, _ help: String, _ value: Value) {
        add(name, kind, help, [([], value)])
    }

    mutating func add(_ name: String, _ kind: Kind, _ help: String, _ samples: [([(String, String)], Value)]) {
        precondition(kind != .counter || name.hasSuffix("_total"), "counter \(name) must end in _total")
        text += "# HELP \(name) \(Self.escape(help, quotes: false))\n# TYPE \(name) \(kind.rawValue)\n"
        for (labels, value) in samples {
            text += name
            if !labels.isEmpty {
                text += "{" + labels.map { "\($0.0)=\"\(Self.escape(Escape.display($0.1), quotes: true))\"" }.joined(separator: ",") + "}"
            }
            text += " " + Self.format(value) + "\n"
        }
    }

    /// A label value or HELP text as the format wants it: `\` and newline escaped, and `"` in
    /// label values. Label values first pass ``Escape/display(_:)-(StringProtocol)`` (names and
    /// topics come from the network): what a scrape shows is what the CLI and the log show.
    static func escape(_ text: String, quotes: Bool) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\"" where quotes: out += "\\\""
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func format(_ value: Value) -> String {
        switch value {
        case .count(let count): return String(count)
        case .seconds(let nanos):
            // Exact decimal seconds, no floating point rounding: 1.5, 0.000250000 -> 0.00025.
            var fraction = String(nanos % 1_000_000_000)
            fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
            while fraction.hasSuffix("0") { fraction.removeLast() }
            return String(nanos / 1_000_000_000) + (fraction.isEmpty ? "" : "." + fraction)
        }
    }
}
