/// Everything a peer sends leaves through its outbox: each datagram is stamped (sequence number,
/// Lamport tick, incarnation), encoded and counted here, and queued with the events of the same
/// input as the ``Action`` list the input returns. The components write only through it.
struct Outbox: Sendable {
    var codec: Codec
    let sender: NodeID
    let replyPort: UInt16
    let cluster: String
    let name: String
    /// Bytes a header of this peer takes, plus the payload length field and the tag.
    let overhead: Int
    var sequence: UInt64 = 0
    /// This peer's own tags, and the extension entries that carry them on the types that do.
    private(set) var tags: MemberTags
    private var tagEntries: [Extension]
    var clock: LamportClock
    /// The incarnation this peer stamps on its headers; only refutation raises it (§6.1.3).
    var incarnation: UInt32 = 0
    var counters = Counters()
    /// One sequence for every request id this peer issues (mingle, pulls, control requests).
    var nextRequestID: UInt32
    /// The actions of the input being handled; taken by ``take()`` when it returns.
    var actions: [Action] = []
    /// Bytes the input being handled may still queue (Protocol.md §6.6).
    let sendBytesPerInput: Int
    var sendBytesLeft: Int

    init(config: PeerConfig, clock: LamportClock, firstRequestID: UInt32) {
        codec = Codec(keys: config.keys)
        sender = config.id
        replyPort = config.replyPort
        cluster = config.cluster
        name = config.name
        overhead = Limits.fixedHeader + config.cluster.utf8.count + config.name.utf8.count + 2
            + (config.keys.isEmpty ? 0 : Limits.tagLength)
        tags = config.tags
        tagEntries = config.tags.extensions
        self.clock = clock
        nextRequestID = firstRequestID
        sendBytesPerInput = max(0, config.limits.sendBytesPerInput)
        sendBytesLeft = sendBytesPerInput
    }

    /// Header, payload length, tag and this peer's tags: what a datagram of a type that carries
    /// tags takes besides its payload (sizing piggyback and MEMBERS pages).
    var membershipOverhead: Int { overhead + tags.extensionBytes }

    mutating func setTags(_ tags: MemberTags) {
        self.tags = tags
        tagEntries = tags.extensions
    }

    /// A new input begins: its send budget is whole again.
    mutating func beginInput() { sendBytesLeft = sendBytesPerInput }

    /// Stamps, encodes and queues one datagram. Encoding can only fail on a value the caller let
    /// through unchecked; it is counted, never trapped on.
    mutating func send(_ payload: Payload, to destinations: [Destination], extensions extra: [Extension] = []) {
        guard !destinations.isEmpty else { return }
        sequence += 1
        let header = Header(
            sequence: sequence, stamp: clock.tick(), sender: sender, incarnation: incarnation,
            replyPort: replyPort, cluster: cluster, name: name)
        do {
            let extensions = (payload.type.carriesTags ? tagEntries : []) + extra
            let bytes = try codec.encode(Message(header: header, payload: payload, extensions: extensions))
            for destination in destinations {
                guard sendBytesLeft >= bytes.count else {
                    counters.drop("send_budget")
                    continue
                }
                sendBytesLeft -= bytes.count
                counters.datagramsOut += 1
                counters.bytesOut += UInt64(bytes.count)
                actions.append(.send(bytes, destination))
            }
        } catch {
            counters.drop("encode_\(error.reason)")
        }
    }

    mutating func send(_ payload: Payload, to destination: Destination) {
        send(payload, to: [destination])
    }

    mutating func emit(_ event: PeerEvent) { actions.append(.emit(event)) }

    mutating func append(_ action: Action) { actions.append(action) }

    mutating func drop(_ reason: String) { counters.drop(reason) }

    mutating func newRequestID() -> UInt32 {
        nextRequestID &+= 1
        if nextRequestID == 0 { nextRequestID = 1 }
        return nextRequestID
    }

    /// The actions queued since the last take.
    mutating func take() -> [Action] {
        defer {
            actions = []
            beginInput()
        }
        return actions
    }
}
