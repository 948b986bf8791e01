/// Message type codes (Protocol.md §3). 0x40–0x7F are reserved for later versions of the
/// standard, 0x80–0xFF for private extensions; a peer that does not know a type drops it.
public enum MessageType: UInt8, Sendable, CaseIterable {
    case announce = 0x01
    case goodbye = 0x03
    case ping = 0x04
    case ack = 0x05
    case members = 0x06
    case pingRequest = 0x07
    case nack = 0x08
    case change = 0x09
    case userEvent = 0x0A
    case hello = 0x10
    case helloReply = 0x11
    case pageRequest = 0x12
    case page = 0x13
    case digestRequest = 0x14
    case digestReply = 0x15
    case candidacy = 0x20
    case leader = 0x21
    case vote = 0x22
    case controlRequest = 0x30
    case controlReply = 0x31

    /// Types that carry their sender's own tags (Protocol.md §3.4.1): on these, no tags entry
    /// means the sender has none at its header's incarnation.
    public var carriesTags: Bool {
        switch self {
        case .announce, .ping, .ack, .change, .members: true
        default: false
        }
    }

    /// Types whose receipt makes a peer answer the sender by unicast, and so are counted
    /// against the sender's answer budget (Protocol.md §6.6). A LEADER may draw a correction
    /// and a MEMBERS page a whole view, so they count too.
    public var isRequest: Bool {
        switch self {
        case .announce, .ping, .pingRequest, .members, .hello, .pageRequest, .digestRequest, .leader, .controlRequest, .userEvent: true
        default: false
        }
    }

    /// The name used in Protocol.md and in the test vectors.
    public var name: String {
        switch self {
        case .announce: "ANNOUNCE"
        case .goodbye: "GOODBYE"
        case .ping: "PING"
        case .ack: "ACK"
        case .members: "MEMBERS"
        case .pingRequest: "PING_REQ"
        case .nack: "NACK"
        case .change: "CHANGE"
        case .userEvent: "USER_EVENT"
        case .hello: "HELLO"
        case .helloReply: "HELLO_REPLY"
        case .pageRequest: "PAGE_REQUEST"
        case .page: "PAGE"
        case .digestRequest: "DIGEST_REQUEST"
        case .digestReply: "DIGEST_REPLY"
        case .candidacy: "CANDIDACY"
        case .leader: "LEADER"
        case .vote: "VOTE"
        case .controlRequest: "CONTROL_REQUEST"
        case .controlReply: "CONTROL_REPLY"
        }
    }
}

/// The common header of every datagram (Protocol.md §2.2).
public struct Header: Equatable, Sendable {
    public var flags: UInt16 = 0
    /// Per-sender, per-boot sequence number; starts at 1 and grows by one per datagram.
    public var sequence: UInt64
    /// The sender's Lamport clock after ticking for this send (Protocol.md §4).
    public var stamp: UInt64
    public var sender: NodeID
    public var incarnation: UInt32
    /// UDP port of the sender's unicast socket: replies go to (source address, reply port).
    public var replyPort: UInt16
    public var cluster: String
    public var name: String

    public init(
        flags: UInt16 = 0, sequence: UInt64, stamp: UInt64, sender: NodeID, incarnation: UInt32,
        replyPort: UInt16, cluster: String, name: String
    ) {
        self.flags = flags
        self.sequence = sequence
        self.stamp = stamp
        self.sender = sender
        self.incarnation = incarnation
        self.replyPort = replyPort
        self.cluster = cluster
        self.name = name
    }
}

/// A message body, one case per type.
public enum Payload: Equatable, Sendable {
    case announce(Announcement)
    case goodbye
    /// A probe: is the receiver alive? It carries the sender's digest and piggybacked changes.
    case ping(Ping)
    /// The answer to a PING, direct or relayed by a helper.
    case ack(Ping)
    case members(MembersPage)
    /// Version 2 (Protocol.md §3.4): ask a helper to probe `target` (its address from the helper's view).
    case pingRequest(Probe)
    /// Version 2: a helper could not reach the target by 80 % of its timeout.
    case nack(Probe)
    /// Version 2: the sender's own verdicts, multicast once.
    case change([MemberEntry])
    /// Issue 18: a user event, from its origin (Protocol.md §3.6).
    case userEvent(UserEvent)
    case hello(Hello)
    case helloReply(HelloReply)
    case pageRequest(PageRequest)
    case page(RevokedPage)
    case digestRequest(requestID: UInt32)
    case digestReply(DigestReply)
    case candidacy(Candidacy)
    case leader(LeaderAnnouncement)
    case vote(Vote)
    case controlRequest(ControlRequest)
    case controlReply(ControlReply)

    public var type: MessageType {
        switch self {
        case .announce: .announce
        case .goodbye: .goodbye
        case .ping: .ping
        case .ack: .ack
        case .members: .members
        case .pingRequest: .pingRequest
        case .nack: .nack
        case .change: .change
        case .userEvent: .userEvent
        case .hello: .hello
        case .helloReply: .helloReply
        case .pageRequest: .pageRequest
        case .page: .page
        case .digestRequest: .digestRequest
        case .digestReply: .digestReply
        case .candidacy: .candidacy
        case .leader: .leader
        case .vote: .vote
        case .controlRequest: .controlRequest
        case .controlReply: .controlReply
        }
    }

    /// How many member entries listed tags (type 0x02, §3.4.1) may index: a MEMBERS page's, a
    /// PING's or an ACK's piggyback; nil on the types that list none.
    var listedEntryCount: Int? {
        switch self {
        case .members(let page): page.entries.count
        case .ping(let ping), .ack(let ping): ping.piggyback.count
        default: nil
        }
    }
}

/// A decoded datagram.
public struct Message: Equatable, Sendable {
    public var header: Header
    public var payload: Payload
    /// The extension area (Protocol.md §3.1), in the order sent; each type at most once.
    /// Types this peer does not know are kept here and ignored by the layers above.
    public var extensions: [Extension]

    public init(header: Header, payload: Payload, extensions: [Extension] = []) {
        self.header = header
        self.payload = payload
        self.extensions = extensions
    }

    /// The sender's tags when its type carries them (§3.4.1), empty when it has none; nil for
    /// other types. A decoded message's tags entries were already judged by the decoder.
    public var senderTags: MemberTags? {
        guard payload.type.carriesTags else { return nil }
        return ((try? MemberTags.decode(extensions)) ?? nil) ?? .empty
    }

    /// The HELLO an ANNOUNCE carries (extension type 0x03, §6.3.1): its sender's first ANNOUNCE
    /// and HELLO go as one multicast. Nil on other types and on an ANNOUNCE without it.
    public var carriedHello: Hello? {
        guard case .announce(let announcement) = payload,
              let requestID = (try? Self.carriedRequestID(in: extensions)) ?? nil else { return nil }
        return Hello(versions: announcement.versions, requestID: requestID, revoked: announcement.revoked)
    }

    /// The extension entry by which an ANNOUNCE carries the HELLO with `requestID`.
    public static func carrying(hello requestID: UInt32) -> Extension {
        var writer = ByteWriter(capacity: 4)
        writer.u32(requestID)
        return Extension(type: Limits.helloExtension, value: writer.bytes)
    }

    /// The request id an extension area's type 0x03 holds (nil when it has none); a value of
    /// any length but 4 is `invalid_value` (§3.4, checked by the decoder on every type).
    static func carriedRequestID(in area: [Extension]) throws(WireError) -> UInt32? {
        guard let entry = area.first(where: { $0.type == Limits.helloExtension }) else { return nil }
        guard entry.value.count == 4 else { throw .invalidValue(field: "hello_request_id") }
        let read: Result<UInt32, WireError> = entry.value.withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            do throws(WireError) { return .success(try reader.u32("hello_request_id")) } catch { return .failure(error) }
        }
        return try read.get()
    }

    /// Other members' tags listed for the entries of a MEMBERS page or of a PING's or ACK's
    /// piggyback (§3.4.1); none on other types.
    public var listedTags: [ListedTags] {
        guard let count = payload.listedEntryCount else { return [] }
        return (try? ListedTags.decode(extensions, entryCount: count)) ?? []
    }
}

/// One entry of the extension area: a type and up to 255 bytes of value.
public struct Extension: Equatable, Sendable {
    public var type: UInt8
    public var value: [UInt8]

    public init(type: UInt8, value: [UInt8]) {
        self.type = type
        self.value = value
    }
}
