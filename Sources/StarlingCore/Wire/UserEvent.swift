/// USER_EVENT payload (Protocol.md §3.6): a small named payload an application sends once to
/// every live agent (issue 18). Only its origin sends it — by multicast once, then by unicast
/// to the live members that have not acknowledged — so the header's sender is the origin.
public struct UserEvent: Equatable, Sendable {
    /// The origin's request id: receivers acknowledge with a CONTROL_REPLY carrying it.
    public var requestID: UInt32
    /// Per origin and boot, from 1; receivers de-duplicate by (origin, sequence).
    public var sequence: UInt32
    /// The origin's Lamport clock, ticked for the event (§4): the event's place in causal order.
    public var stamp: UInt64
    /// 1 to 64 bytes of UTF-8 without control characters or commas (what `user:NAME` filters).
    public var name: String
    /// 0 to 1,024 bytes of UTF-8.
    public var payload: String

    public init(requestID: UInt32, sequence: UInt32, stamp: UInt64, name: String, payload: String) {
        self.requestID = requestID
        self.sequence = sequence
        self.stamp = stamp
        self.name = name
        self.payload = payload
    }

    /// Whether `name` may name a user event: 1 to 64 bytes, no C0 control, DEL or comma (a
    /// handler filter lists names separated by commas). Compared as bytes, never as Characters.
    public static func isValidName(_ name: String) -> Bool {
        Limits.userEventNameBytes.contains(name.utf8.count)
            && !name.utf8.contains { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: ",") }
    }
}

extension Limits {
    /// A user event's name (Protocol.md §3.6).
    public static let userEventNameBytes = 1...64
    /// A user event's payload (Protocol.md §3.6).
    public static let userEventPayloadBytes = 0...1_024
}
