/// The checks every received datagram passes before any component sees it (Protocol.md §2,
/// §7.3): it decodes, it is of this cluster, it is not this peer's own, and — with a key — its
/// sequence number is new. Shared by ``Peer`` and ``ControlRequester``.
struct Intake: Sendable {
    let cluster: String
    let me: NodeID
    let keyed: Bool
    let replayWindowLimit: Int
    var replay: [NodeID: ReplayWindow] = [:]
    /// Endpoints already named in the log for speaking another version (Protocol.md §3.4).
    var otherVersions: Set<Endpoint> = []
    static let otherVersionsNamed = 64

    init(config: PeerConfig) {
        cluster = config.cluster
        me = config.id
        keyed = !config.keys.isEmpty
        replayWindowLimit = config.limits.replayWindows
    }

    enum Verdict: Sendable {
        case accepted(Message)
        /// This peer's own datagram (its multicast looped back), counted as `own`.
        case own(Message)
        case dropped
    }

    /// Counts the datagram in and checks it; drops are counted and, except `own`, reported.
    mutating func admit(_ decoded: Result<Message, WireError>, size: Int, from source: Endpoint, now: Now, out: inout Outbox) -> Verdict {
        out.counters.datagramsIn += 1
        out.counters.bytesIn += UInt64(size)
        let message: Message
        switch decoded {
        case .success(let decodedMessage): message = decodedMessage
        case .failure(let error):
            drop(error.reason, from: source, out: &out)
            return .dropped
        }
        let header = message.header
        guard bytesEqual(header.cluster, cluster) else {
            drop("foreign_cluster", from: source, out: &out)
            return .dropped
        }
        guard header.sender != me else {
            // Expected, counted, never logged.
            out.drop("own")
            return .own(message)
        }
        if keyed {
            guard acceptSequence(header.sequence, from: header.sender, now: now, out: &out) else {
                drop("replay", from: source, out: &out)
                return .dropped
            }
        }
        return .accepted(message)
    }

    /// A datagram of another version: its sender is named once (at most 64 senders are
    /// remembered; past that only the counter says more).
    mutating func noteOtherVersion(_ version: UInt8, name: String?, from source: Endpoint, out: inout Outbox) {
        guard otherVersions.count < Self.otherVersionsNamed, otherVersions.insert(source).inserted else { return }
        out.emit(.otherVersion(version: version, name: name, from: source))
    }

    private func drop(_ reason: String, from source: Endpoint, out: inout Outbox) {
        out.drop(reason)
        out.emit(.dropped(reason: reason, from: source))
    }

    /// The replay window of `sender` (Protocol.md §7.3); a full table forgets the sender heard
    /// from least recently, never all of them at once.
    private mutating func acceptSequence(_ sequence: UInt64, from sender: NodeID, now: Now, out: inout Outbox) -> Bool {
        var window = replay[sender] ?? ReplayWindow()
        guard window.accept(sequence) else { return false }
        window.lastUsed = now.nanos
        if replay[sender] == nil, replay.count >= replayWindowLimit,
            let oldest = replay.min(by: { ($0.value.lastUsed, $0.key) < ($1.value.lastUsed, $1.key) })?.key {
            replay[oldest] = nil
            out.drop("replay_windows_full")
        }
        replay[sender] = window
        return true
    }
}
