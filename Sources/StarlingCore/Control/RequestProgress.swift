/// A read-only look at a request still collecting replies, for requesters that report what
/// came in part (the CLI: "incomplete reply from X: 3 of 40 pages missing", issue 14 item 26).
public struct RequestProgress: Sendable, Equatable {
    /// A reply of which only some pages arrived.
    public struct Partial: Sendable, Equatable {
        public var name: String
        public var id: NodeID
        public var received: Int
        public var pageCount: Int

        public init(name: String, id: NodeID, received: Int, pageCount: Int) {
            self.name = name
            self.id = id
            self.received = received
            self.pageCount = pageCount
        }
    }

    /// Replies still missing pages, sorted by name bytes.
    public var partial: [Partial]
}
