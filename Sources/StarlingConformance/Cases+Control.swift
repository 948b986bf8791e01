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
        peer.send(peer.request(requestID, "revoked"))
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
        peer.send(peer.request(requestID, "watch"))
        let watching = peer.expect(1_000) { received in
            guard case .controlReply(let reply) = received.message.payload, reply.requestID == requestID else { return false }
            return (try? JSON.parse(String(decoding: reply.body, as: UTF8.self)))?["event"]?.stringValue == "watching"
        }
        guard watching != nil else { return .fail("no \"watching\" reply") }
        let id = "conformance-watched-\(System.randomUInt64())"
        peer.send(peer.request(7103, "revoke", args: [id]))
        let event = peer.expect(1_000) { received in
            guard case .controlReply(let reply) = received.message.payload, reply.requestID == requestID,
                  let json = try? JSON.parse(String(decoding: reply.body, as: UTF8.self)) else { return false }
            return json["event"]?.stringValue == "revoked" && (json["ids"]?.arrayValue ?? []).contains(.string(id))
        }
        return event != nil ? .pass : .fail("the revoke was not streamed to the watcher")
    }

    /// §3.5.1 `revoked`: a limit outside 1–1000 is an error, and a page lists at most LIMIT ids
    /// strictly after the cursor, in byte order, with `more` telling whether others follow.
    func revokedPaging() -> Verdict {
        for bad in ["0", "-1", "1001", "x"] {
            guard let (status, _) = peer.control("revoked", [bad]) else { return .fail("no reply to revoked \(bad)") }
            guard status == .error else { return .fail("revoked \(bad): status \(status), want 1 (error)") }
        }
        let ids = (0..<3).map { "conformance-page-\($0)" }
        guard peer.control("revoke", ids)?.0 == .ok else { return .fail("revoke not acknowledged") }
        guard let (status, first) = peer.control("revoked", ["2", "conformance-page-"]), status == .ok else { return .fail("no page") }
        let listed = (first["ids"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        guard listed == ["conformance-page-0", "conformance-page-1"] else { return .fail("limit 2 after the cursor listed \(listed)") }
        guard first["more"]?.boolValue == true else { return .fail("`more` is not true with ids left") }
        guard let (_, next) = peer.control("revoked", ["2", "conformance-page-1"]) else { return .fail("no second page") }
        let rest = (next["ids"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        return rest.first == "conformance-page-2" ? .pass : .fail("the page after the cursor began with \(rest.first ?? "nothing")")
    }

    /// §7.3: with a key, a command with effects whose `issued_ms` is far from the agent's clock
    /// (a captured request replayed later) is refused and does not run.
    func refusesStaleCommand() -> Verdict {
        guard keyed else { return .skip("applies to a keyed target: run with --key-file against an agent that has the key") }
        let id = "conformance-stale-\(System.randomUInt64())"
        let old = System.now().wallMillis - 10 * 60_000
        peer.send(.controlRequest(ControlRequest(requestID: 7104, issuedMillis: old, command: "revoke", target: "", args: [id])))
        let reply = peer.expect(500) { if case .controlReply(let r) = $0.message.payload { r.requestID == 7104 } else { false } }
        guard let reply, case .controlReply(let body) = reply.message.payload else { return .fail("no reply to a stale revoke") }
        guard body.status == .refused else { return .fail("a revoke issued 10 minutes ago: status \(body.status), want 2 (refused)") }
        // The first id after the id's own prefix is the id itself when it is held.
        guard let (_, page) = peer.control("revoked", ["1", String(id.dropLast())]) else { return .fail("no reply to revoked") }
        let held = (page["ids"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
        return held.contains(id) ? .fail("the stale revoke ran") : .pass
    }
}
