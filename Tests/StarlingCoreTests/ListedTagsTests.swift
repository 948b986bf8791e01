@testable import StarlingCore
import XCTest

/// Issue 18 (member tags, Protocol.md §3.4.1): MEMBERS pages list the tags their sender holds
/// for the members on them (extension type 0x02), so that a newcomer, whose view comes from
/// MEMBERS, holds every member's tags at once rather than one probe round later.
final class ListedTagsTests: XCTestCase {
    let ms = PeerHarness.ms
    let web = try! MemberTags(["role": "web"])

    /// A harness whose fakes 0…count-1 each sent a PING with `tags(index)`.
    func tagged(_ count: Int, tags: (Int) -> MemberTags, configure: (inout PeerConfig) -> Void = { _ in }) -> (PeerHarness, [NodeID]) {
        var h = PeerHarness(configure: configure)
        h.start()
        let ids = h.join(count)
        for (index, id) in ids.enumerated() {
            let ping = Payload.ping(Ping(probeID: 1, target: h.peer.config.id, revoked: h.peer.revoked.digest, piggyback: []))
            h.receive(ping, from: id, name: h.name(of: id), port: h.port(of: id), extensions: tags(index).extensions)
        }
        return (h, ids)
    }

    func testAPushPullAnswerListsTheTagsOfTheMembersOnIt() throws {
        var (h, ids) = tagged(4) { $0 % 2 == 0 ? self.web : .empty }
        h.clearSent()
        h.receive(.members(MembersPage(replyWanted: true, page: 0, pageCount: 1, entries: [])), from: ids[1], name: "f1", port: h.port(of: ids[1]))
        let pages = h.sent.filter { $0.0.payload.type == .members }.map(\.0)
        XCTAssertEqual(pages.count, 1)
        let page = try XCTUnwrap(pages.first)
        guard case .members(let members) = page.payload else { return XCTFail() }
        let listed = page.listedTags.map { members.entries[Int($0.index)].id }
        XCTAssertEqual(Set(listed), [ids[0], ids[2]], "the tagged members, and only they (never the sender's own entry)")
        XCTAssertTrue(page.listedTags.allSatisfy { $0.tags == web && $0.incarnation == 0 })
    }

    /// 40 members with 512 bytes of tags each: the pages get smaller, every one fits, and every
    /// member's tags are listed once across them.
    func testTheLargestTagsOnEveryMemberStillFitEveryPage() throws {
        var (h, ids) = tagged(40, tags: { _ in Samples.largestTags }) { $0.keys = [Samples.key] }
        h.clearSent()
        h.peer.membership.sendMembers(to: Endpoint(address: PeerHarness.loopback, port: 9999), replyWanted: false, out: &h.peer.outbox)
        h.record(h.peer.outbox.take())
        let pages = h.sent.filter { $0.0.payload.type == .members }.map(\.0)
        XCTAssertGreaterThanOrEqual(pages.count, 20, "two members of 512-byte tags a page at most")
        var listed: [NodeID] = []
        for page in pages {
            guard case .members(let members) = page.payload else { continue }
            listed += page.listedTags.map { members.entries[Int($0.index)].id }
        }
        XCTAssertEqual(listed.sorted(), ids.sorted())
    }

    func testListedTagsApplyUpToTheIncarnationOfTheirEntry() throws {
        var (h, ids, member) = withMember(at: 3)
        let own = MemberEntry(id: h.peer.config.id, incarnation: 0, status: .alive, endpoint: Endpoint(address: PeerHarness.loopback, port: 9000), name: "me")
        func page(_ records: [ListedTags]) {
            h.receive(.members(MembersPage(replyWanted: false, page: 0, pageCount: 1, entries: [member, own])), from: ids[0], name: "f0",
                port: h.port(of: ids[0]), extensions: ListedTags.extensions(records))
        }
        page([ListedTags(index: 0, incarnation: 4, tags: web)])
        XCTAssertEqual(h.peer.tags(of: member.id), .empty, "tags told at an incarnation above the entry's are ignored")
        page([ListedTags(index: 0, incarnation: 2, tags: web), ListedTags(index: 1, incarnation: 0, tags: web)])
        XCTAssertEqual(h.peer.tags(of: member.id), web)
        XCTAssertEqual(h.peer.tags, .empty, "this peer's own tags are never set by others")
        XCTAssertNil(h.peer.membership.tagRecords[h.peer.config.id])
        let older = try MemberTags(["role": "old"])
        page([ListedTags(index: 0, incarnation: 1, tags: older)])
        XCTAssertEqual(h.peer.tags(of: member.id), web, "older second-hand tags do not replace newer ones")
    }

    /// New tags are gossiped second-hand (§3.4.1): the peer that learned them queues the
    /// member's entry, and its next ACK piggybacks it with the tags listed.
    func testNewTagsRideOnTheNextAckListed() throws {
        var (h, ids) = tagged(3) { $0 == 0 ? self.web : .empty }
        h.clearSent()
        h.ping(from: ids[2], name: h.name(of: ids[2]), port: h.port(of: ids[2]))
        let ack = try XCTUnwrap(h.sent.first { $0.0.payload.type == .ack }?.0)
        guard case .ack(let payload) = ack.payload else { return XCTFail() }
        let listed = ack.listedTags.map { (payload.piggyback[Int($0.index)].id, $0.tags) }
        XCTAssertEqual(listed.map(\.0), [ids[0]], "the tagged member's entry, listed")
        XCTAssertEqual(listed.first?.1, web)
    }

    /// A PING's piggyback lists tags like a MEMBERS page: the receiver applies them.
    func testTagsListedOnAPingsPiggybackApply() {
        var (h, ids, member) = withMember(at: 3)
        let ping = Ping(probeID: 4, target: h.peer.config.id, revoked: h.peer.revoked.digest, piggyback: [member])
        h.receive(.ping(ping), from: ids[0], name: h.name(of: ids[0]), port: h.port(of: ids[0]),
            extensions: ListedTags.extensions([ListedTags(index: 0, incarnation: 3, tags: web)]))
        XCTAssertEqual(h.peer.tags(of: member.id), web)
    }

    /// Lists on a piggyback are best effort (§3.4.1): with 512 bytes of tags on every member,
    /// a PING or ACK still carries as many entries as without tags, and lists what fits.
    func testTagsNeverCrowdEntriesOutOfAPiggyback() throws {
        var (h, ids) = tagged(12, tags: { _ in Samples.largestTags })
        h.clearSent()
        h.ping(from: ids[11], name: h.name(of: ids[11]), port: h.port(of: ids[11]))
        let ack = try XCTUnwrap(h.sent.first { $0.0.payload.type == .ack }?.0)
        guard case .ack(let payload) = ack.payload else { return XCTFail() }
        XCTAssertEqual(payload.piggyback.count, h.peer.config.piggybackPerPing, "every entry the queue gave")
        XCTAssertFalse(ack.listedTags.isEmpty, "and the tags that fit")
        XCTAssertLessThan(ack.listedTags.count, payload.piggyback.count)
        XCTAssertLessThanOrEqual(try Codec().encode(ack).count, Limits.maxDatagram)
    }

    /// Second-hand tags told at the incarnation already held do not replace the held ones:
    /// two sets at one incarnation would flip views back and forth as both spread.
    func testListedTagsAtTheHeldIncarnationDoNotReplaceTheHeldOnes() throws {
        var (h, ids, member) = withMember(at: 4)
        let db = try MemberTags(["role": "db"])
        func listed(_ tags: MemberTags, at incarnation: UInt32) {
            let ping = Ping(probeID: 4, target: h.peer.config.id, revoked: h.peer.revoked.digest, piggyback: [member])
            h.receive(.ping(ping), from: ids[0], name: h.name(of: ids[0]), port: h.port(of: ids[0]),
                extensions: ListedTags.extensions([ListedTags(index: 0, incarnation: incarnation, tags: tags)]))
        }
        listed(web, at: 3)
        listed(db, at: 3)
        XCTAssertEqual(h.peer.tags(of: member.id), web)
        listed(db, at: 4)
        XCTAssertEqual(h.peer.tags(of: member.id), db, "a higher incarnation wins")
    }

    /// A started peer with two members, and an entry about a third member at `incarnation`
    /// for others to list.
    func withMember(at incarnation: UInt32) -> (PeerHarness, [NodeID], MemberEntry) {
        var h = PeerHarness()
        h.start()
        let ids = h.join(2)
        let member = MemberEntry(id: NodeID(high: 0x66, low: 1), incarnation: incarnation, status: .alive,
            endpoint: Endpoint(address: PeerHarness.loopback, port: 9700), name: "g")
        return (h, ids, member)
    }
}
