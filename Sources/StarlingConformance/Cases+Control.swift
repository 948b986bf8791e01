import StarlingCore
import StarlingPOSIX

/// Control-plane cases beyond one request and one reply: paging and the watch stream.
extension Suite {
    /// §3.5: a body larger than one datagram comes as pages `0 ..< page_count`, each once, that
    /// concatenate to one JSON document.
    func pagedReply() -> Verdict {
        // About 8 KB of revoked ids (ten per request, so each request fits one datagram), named
        // to sort after the ids other cases rely on.
        let ids = (0..<60).map { "conformance-paged-\($0)-" + String(repeating: "p", count: 80) }
        for start in stride(from: 0, to: ids.count, by: 10) {
            guard peer.control("revoke", Array(ids[start..<(start + 10)]))?.0 == .ok else { return .fail("revoke not acknowledged") }
        }
        let requestID: UInt32 = 7101
        peer.send(.controlRequest(ControlRequest(requestID: requestID, command: "revoked", target: "", args: [])))
        var pages: [UInt16: [UInt8]] = [:]
        var counts: Set<UInt16> = []
        var duplicates = 0
        _ = peer.expect(1_500) { received in
            guard case .controlReply(let reply) = received.message.payload, reply.requestID == requestID else { return false }
            if pages[reply.page] != nil { duplicates += 1 }
            pages[reply.page] = reply.body
            counts.insert(reply.pageCount)
            return pages.count >= Int(reply.pageCount)
        }
        guard counts.count == 1, let count = counts.first else { return .fail("pages disagree on page_count: \(counts.sorted())") }
        guard count > 1 else { return .fail("an 8 KB body came in one page") }
        guard pages.count == Int(count), Set(pages.keys) == Set(0..<count) else {
            return .fail("got pages \(pages.keys.sorted()) of \(count)")
        }
        guard duplicates == 0 else { return .fail("\(duplicates) pages sent twice") }
        let body = (0..<count).flatMap { pages[$0]! }
        guard let json = try? JSON.parse(String(decoding: body, as: UTF8.self)) else { return .fail("the pages do not concatenate to JSON") }
        let listed = Set((json["ids"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue })
        return listed.isSuperset(of: ids) ? .pass : .fail("the reassembled body lacks revoked ids")
    }

    /// §3.5.1 `watch`: after "watching", cluster events arrive as further replies with the
    /// watch's request id.
    func watchStream() -> Verdict {
        let requestID: UInt32 = 7102
        peer.send(.controlRequest(ControlRequest(requestID: requestID, command: "watch", target: "", args: [])))
        let watching = peer.expect(1_000) { received in
            guard case .controlReply(let reply) = received.message.payload, reply.requestID == requestID else { return false }
            return (try? JSON.parse(String(decoding: reply.body, as: UTF8.self)))?["event"]?.stringValue == "watching"
        }
        guard watching != nil else { return .fail("no \"watching\" reply") }
        let id = "conformance-watched-\(System.randomUInt64())"
        peer.send(.controlRequest(ControlRequest(requestID: 7103, command: "revoke", target: "", args: [id])))
        let event = peer.expect(1_000) { received in
            guard case .controlReply(let reply) = received.message.payload, reply.requestID == requestID,
                  let json = try? JSON.parse(String(decoding: reply.body, as: UTF8.self)) else { return false }
            return json["event"]?.stringValue == "revoked" && (json["ids"]?.arrayValue ?? []).contains(.string(id))
        }
        return event != nil ? .pass : .fail("the revoke was not streamed to the watcher")
    }
}
