import StarlingCore
import XCTest

/// The control plane under hostile input (issue 14): `revoked` paging, watch fan-out once per
/// event, and the bounded tables of Protocol.md §6.6.
final class ControlLimitsTests: XCTestCase {
    let ms = PeerHarness.ms
    let cli = NodeID(high: 20, low: 1)
    let cliPort: UInt16 = 9400

    /// The replies this peer sent to `port`, decoded, in order; pages are joined per request id.
    func bodies(_ h: PeerHarness, port: UInt16 = 9400) -> [(ControlStatus, JSON)] {
        var out: [(ControlStatus, JSON)] = []
        var pages: [UInt32: [UInt16: [UInt8]]] = [:]
        for (message, destination) in h.sent {
            guard case .controlReply(let reply) = message.payload, destination == .peer(Endpoint(address: 0x7F00_0001, port: port)) else { continue }
            pages[reply.requestID, default: [:]][reply.page] = reply.body
            guard pages[reply.requestID]?.count == Int(reply.pageCount) else { continue }
            let body = (0..<reply.pageCount).flatMap { pages[reply.requestID]?[$0] ?? [] }
            pages[reply.requestID] = nil
            out.append((reply.status, (try? JSON.parse(String(decoding: body, as: UTF8.self))) ?? .null))
        }
        return out
    }

    func ask(_ h: inout PeerHarness, _ id: UInt32, _ command: String, _ args: [String] = [], from node: NodeID? = nil, port: UInt16? = nil, issued: UInt64? = nil) {
        let request = ControlRequest(requestID: id, issuedMillis: issued ?? h.time.wallMillis, command: command, target: "", args: args)
        h.receive(.controlRequest(request), from: node ?? cli, name: "cli", port: port ?? cliPort)
    }

    func last(_ h: inout PeerHarness, _ id: UInt32, _ command: String, _ args: [String] = []) -> (ControlStatus, JSON) {
        h.clearSent()
        ask(&h, id, command, args)
        return bodies(h).last ?? (.error, .null)
    }

    // MARK: revoked (items 1, 15)

    func testRevokedLimitOutOfRangeIsAnErrorNotATrap() {
        // issue 14 item 1: limit -1 trapped every agent (prefix with a negative count).
        var h = PeerHarness()
        h.start()
        for (index, bad) in ["-1", "0", "1001", "99999999999999999999999999", "", "1e3", "+5", " 5", "٣", "10x"].enumerated() {
            let (status, body) = last(&h, UInt32(100 + index), "revoked", [bad])
            XCTAssertEqual(status, .error, "limit '\(bad)'")
            XCTAssertNotNil(body["error"]?.stringValue, "limit '\(bad)' says why")
        }
        XCTAssertEqual(last(&h, 200, "revoked", ["5", "a", "b"]).0, .error, "three arguments")
        XCTAssertEqual(last(&h, 201, "revoked", ["1000"]).0, .ok)
        XCTAssertEqual(last(&h, 202, "revoked", ["0007"]).0, .ok, "leading zeros are still decimal")
    }

    func testRevokedPagesByLimitAndCursorInByteOrder() {
        // issue 14 item 1: the agreed semantics: LIMIT ids strictly after CURSOR, `more`.
        var h = PeerHarness()
        h.start()
        // Byte order puts "cafz" (0x7A) before "café" (0xC3 0xA9).
        let ids = ["b", "a", "c", "caf\u{E9}", "cafz", "d"]
        h.record(h.peer.revoke(ids, now: h.time).1)
        var (status, page) = last(&h, 1, "revoked", ["2"])
        XCTAssertEqual(status, .ok)
        XCTAssertEqual(page["count"]?.numberValue, Double(h.peer.revoked.count))
        XCTAssertEqual(page["ids"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, ["a", "b"])
        XCTAssertEqual(page["more"]?.boolValue, true)
        XCTAssertEqual(page["ids"]?.arrayValue?.first?["revoked_at_ms"]?.numberValue, Double(h.time.wallMillis))
        (_, page) = last(&h, 2, "revoked", ["2", "b"])
        let third = page["ids"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
        XCTAssertEqual(third.first, "c")
        XCTAssertEqual(third.count, 2)
        XCTAssertTrue(RevokedSet.precedes("c", third[1]), "byte order after the cursor")
        (_, page) = last(&h, 3, "revoked", ["1000", "c"])
        XCTAssertEqual(page["ids"]?.arrayValue?.compactMap { $0["id"]?.stringValue }, ["cafz", "caf\u{E9}", "d"])
        XCTAssertEqual(page["more"]?.boolValue, false)
        (_, page) = last(&h, 4, "revoked", ["10", "zzz"])
        XCTAssertEqual(page["ids"]?.arrayValue?.count, 0)
        XCTAssertEqual(page["more"]?.boolValue, false)
    }

    func testRevokedBodyStaysWithin64KiBAndWalksEveryIdOnce() {
        // issue 14 item 15: a 73-byte `revoked` request made 2.7 MB of replies.
        let long = String(repeating: "x", count: 110)
        var entries: [RevokedEntry] = []
        for index in 0..<5_000 { entries.append(RevokedEntry(id: "\(10_000 + index)-\(long)", revokedAtMillis: 1_800_000_000_000)) }
        var config = PeerConfig(name: "me", id: NodeID(high: 0x5000, low: 1))
        config.replyPort = 9000
        var h = PeerHarness()
        h.peer = Peer(config: config, revoked: entries, nowMillis: 1_800_000_000_000)
        h.start()
        var seen: [String] = []
        var cursor: String?
        var requestID: UInt32 = 1
        while true {
            h.clearSent()
            ask(&h, requestID, "revoked", ["1000"] + (cursor.map { [$0] } ?? []))
            requestID += 1
            let replyBytes = h.sent.reduce(0) { total, sent in
                if case .controlReply(let reply) = sent.0.payload { total + reply.body.count } else { total }
            }
            XCTAssertLessThanOrEqual(replyBytes, 64 * 1_024, "one request, one body of at most 64 KiB")
            guard let (status, page) = bodies(h).last, status == .ok, let rows = page["ids"]?.arrayValue else { return XCTFail("no page") }
            XCTAssertEqual(page["count"]?.numberValue, 5_000)
            let listed = rows.compactMap { $0["id"]?.stringValue }
            XCTAssertFalse(listed.isEmpty)
            seen += listed
            cursor = listed.last
            guard page["more"]?.boolValue == true else { break }
            XCTAssertLessThan(listed.count, 1_000, "cut by size, not by the limit")
            XCTAssertLessThan(requestID, 100, "the walk ends")
            if requestID >= 100 { break }
        }
        XCTAssertEqual(seen, entries.map(\.id), "every id once, in byte order")
        // A page that fits is repeated from the kept reply, byte for byte.
        h.clearSent()
        ask(&h, 1, "revoked", ["1000"])
        let repeatBody = bodies(h).last?.1
        h.clearSent()
        ask(&h, 1, "revoked", ["1000"])
        XCTAssertEqual(bodies(h).last?.1, repeatBody)
    }

    // MARK: watch (items 7, 13)

    func testEachEventOfABatchIsSentToAWatcherOnce() {
        // issue 14 item 7: 8 joins in one receive batch printed 36 events.
        var h = PeerHarness()
        h.start()
        ask(&h, 1, "watch", port: 9500)
        h.clearSent()
        let eventsBefore = h.events.count
        var datagrams: [[UInt8]] = []
        for index in 0..<8 {
            let id = NodeID(high: 30, low: UInt64(index))
            let header = Header(sequence: 1, stamp: 1, sender: id, incarnation: 0, replyPort: UInt16(9600 + index), cluster: "starling", name: "n\(index)")
            let announcement = Announcement(memberCount: 2, revoked: h.peer.revoked.digest)
            datagrams.append(try! h.codec.encode(Message(header: header, payload: .announce(announcement))))
        }
        let actions = datagrams.withUnsafeBufferPointers { buffers in
            h.peer.onDatagrams(buffers.map { (bytes: $0, source: Endpoint(address: 0x7F00_0001, port: 9600)) }, now: h.time)
        }
        h.record(actions)
        // The 8 newcomers are published together once they settle (§6.1.8).
        h.advance(h.peer.config.settleInterval)
        let emitted = h.events[eventsBefore...].filter { Peer.eventJSON($0, source: "me", wallMillis: 0) != nil }
        let streamed = bodies(h, port: 9500).map(\.1)
        XCTAssertEqual(emitted.filter { $0.kind == "joined" }.count, 8)
        XCTAssertEqual(streamed.filter { $0["event"]?.stringValue == "joined" }.count, 8, "each join streamed once")
        XCTAssertEqual(streamed.count, emitted.count, "every cluster event of the batch once")
    }

    func testWatchersAreBoundedAndCounted() {
        // issue 14 item 13: 30,000 watchers made one agent send 1.1 GB.
        var h = PeerHarness()
        h.start()
        for index in 0..<64 { ask(&h, UInt32(index + 1), "watch", from: NodeID(high: 40, low: UInt64(index)), port: UInt16(10_000 + index)) }
        h.clearSent()
        ask(&h, 100, "watch", from: NodeID(high: 41, low: 0), port: 11_000)
        XCTAssertEqual(bodies(h, port: 11_000).first?.0, .refused, "the 65th watcher")
        XCTAssertEqual(h.peer.counters.drops["watchers_full"], 1)
        // A watcher renews while the table is full.
        h.clearSent()
        ask(&h, 101, "watch", from: NodeID(high: 40, low: 0), port: 10_000)
        XCTAssertEqual(bodies(h, port: 10_000).first?.0, .ok)
        // Watchers expire after 10 s, and room comes back.
        h.advance(11_000 * ms)
        h.clearSent()
        ask(&h, 102, "watch", from: NodeID(high: 41, low: 0), port: 11_000)
        XCTAssertEqual(bodies(h, port: 11_000).first?.0, .ok)
    }

    // MARK: Tables (item 13)

    func testTheRunOnceTableRefusesEffectsWhenFullInsteadOfForgetting() {
        // issue 14 item 13: forgetting a run request to make room could let it run twice.
        var h = PeerHarness()
        h.start()
        for index in 0..<8_192 { ask(&h, 1, "revoke", ["t\(index)"], from: NodeID(high: 50, low: UInt64(index))) }
        XCTAssertEqual(h.peer.counters.drops["run_once_full"], nil)
        h.clearSent()
        ask(&h, 1, "revoke", ["one-more"], from: NodeID(high: 51, low: 0))
        XCTAssertEqual(bodies(h).last?.0, .refused)
        XCTAssertFalse(h.peer.revoked.contains("one-more"))
        XCTAssertEqual(h.peer.counters.drops["run_once_full"], 1)
        // A command without effects still runs (unremembered).
        XCTAssertEqual(last(&h, 2, "ping").0, .ok)
        // The first request repeated: answered from its kept reply, not run again.
        let runs = h.events.filter { if case .revoked = $0 { true } else { false } }.count
        ask(&h, 1, "revoke", ["t0"], from: NodeID(high: 50, low: 0))
        XCTAssertEqual(h.events.filter { if case .revoked = $0 { true } else { false } }.count, runs)
        // After the memory (60 s) the table has room again.
        h.advance(62_000 * ms)
        XCTAssertEqual(last(&h, 3, "revoke", ["one-more"]).0, .ok)
        XCTAssertTrue(h.peer.revoked.contains("one-more"))
    }

    func testKeptReplyBytesAreBounded() throws {
        // issue 14 item 13: replies kept for retries, at most 64 KiB each and 1 MiB in all.
        let long = String(repeating: "y", count: 120)
        let entries = (0..<2_000).map { RevokedEntry(id: "\(10_000 + $0)-\(long)", revokedAtMillis: 1_800_000_000_000) }
        var config = PeerConfig(name: "me", id: NodeID(high: 0x5000, low: 1))
        config.replyPort = 9000
        var h = PeerHarness()
        h.peer = Peer(config: config, revoked: entries, nowMillis: 1_800_000_000_000)
        h.start()
        for index in 0..<40 { ask(&h, UInt32(index + 1), "revoked", ["1000"]) }
        let stats = last(&h, 1_000, "stats").1
        let kept = try XCTUnwrap(stats["control"]?["kept_reply_bytes"]?.numberValue)
        XCTAssertGreaterThan(kept, 15 * 60 * 1_024, "about 16 bodies of ~64 KiB kept")
        XCTAssertLessThanOrEqual(kept, 1_024 * 1_024)
        XCTAssertEqual(stats["control"]?["run_once"]?.numberValue, 41)
        // Expired entries give their bytes back.
        h.advance(12_000 * ms)
        let after = last(&h, 1_001, "stats").1
        XCTAssertEqual(after["control"]?["run_once"]?.numberValue, 1, "only the first stats request is left")
        XCTAssertLessThan(after["control"]?["kept_reply_bytes"]?.numberValue ?? .infinity, 4_096)
    }

    func testElectWaitersAreBoundedPerTopicAndInAll() {
        // issue 14 item 13 (and 12): elect requests in quorum mode without a quorum never drained.
        var h = PeerHarness { $0.quorum = 3 }
        h.start()
        for index in 0..<65 { ask(&h, UInt32(index + 1), "elect", ["jobs"], from: NodeID(high: 60, low: UInt64(index)), port: 12_000) }
        let refused = bodies(h, port: 12_000).filter { $0.0 == .refused }
        XCTAssertEqual(refused.count, 1, "the 65th waiter of one topic")
        XCTAssertEqual(h.peer.counters.drops["elect_waiters_full"], 1)
        for index in 0..<1_100 { ask(&h, 1, "elect", ["t\(index / 50)"], from: NodeID(high: 61, low: UInt64(index)), port: 12_001) }
        XCTAssertEqual(bodies(h, port: 12_001).filter { $0.0 == .refused }.count, 1_100 - (1_024 - 64))
        XCTAssertEqual(last(&h, 5_000, "stats").1["control"]?["elect_waiters"]?.numberValue, 1_024)
        // Unanswered waiters go after 10 s.
        h.advance(11_000 * ms)
        XCTAssertEqual(last(&h, 5_001, "stats").1["control"]?["elect_waiters"]?.numberValue, 0)
    }

    func testPendingRequestsAreBoundedByFinishingTheOldest() {
        // issue 14 item 13: requests this peer makes.
        var h = PeerHarness()
        var first: UInt32 = 0
        for index in 0..<1_025 {
            let (id, actions) = h.peer.request("ping", options: RequestOptions(deadline: 60_000 * ms), now: h.time)
            if index == 0 { first = id }
            h.record(actions)
            h.now += ms
        }
        let ended = h.events.compactMap { if case .requestFinished(let id, let reason, _, _) = $0 { (id, reason) } else { nil } }
        XCTAssertEqual(ended.map(\.0), [first])
        XCTAssertEqual(ended.map(\.1), [.deadline])
        XCTAssertEqual(h.peer.counters.drops["requests_full"], 1)
    }

    func testForgedRepliesCannotGrowARequester() {
        // issue 14 item 13: a reply claiming 65,535 pages is held only up to 4 MiB per request.
        var h = PeerHarness()
        let (id, actions) = h.peer.request("stats", options: RequestOptions(deadline: 60_000 * ms), now: h.time)
        h.record(actions)
        let body = [UInt8](repeating: 0x20, count: 1_200)
        for page in 0..<4_000 {
            let reply = ControlReply(requestID: id, status: .ok, memberCount: 2, page: UInt16(page), pageCount: .max, body: body)
            h.receive(.controlReply(reply), from: cli, name: "forger")
        }
        let dropped = h.peer.counters.drops["reply_too_large"] ?? 0
        XCTAssertGreaterThan(dropped, 400)
        XCTAssertLessThan(dropped, 1_000)
        // A page that disagrees on the page count is not mixed into the reply.
        h.receive(.controlReply(ControlReply(requestID: id, status: .ok, memberCount: 2, page: 0, pageCount: 1, body: [])), from: cli, name: "forger")
        XCTAssertEqual(h.peer.counters.drops["reply_page_mismatch"], 1)
    }
}

extension Array where Element == [UInt8] {
    /// Calls `body` with a raw buffer over each element, all valid at once.
    func withUnsafeBufferPointers<R>(_ body: ([UnsafeRawBufferPointer]) -> R) -> R {
        func step(_ index: Int, _ done: [UnsafeRawBufferPointer]) -> R {
            guard index < count else { return body(done) }
            return self[index].withUnsafeBytes { step(index + 1, done + [$0]) }
        }
        return step(0, [])
    }
}
