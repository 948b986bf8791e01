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

extension Peer {
    /// The progress of request `id`; nil once it finished (or was never sent).
    public func progress(ofRequest id: UInt32) -> RequestProgress? {
        guard let pending = requests[id] else { return nil }
        let partial = pending.partial.map { node, part in
            RequestProgress.Partial(name: part.name, id: node, received: part.pages.count, pageCount: Int(part.pageCount))
        }
        return RequestProgress(partial: partial.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) })
    }
}
