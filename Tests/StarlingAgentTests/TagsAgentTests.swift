import Foundation
@_spi(Testing) @testable import Starling
import StarlingCore
import StarlingPOSIX
import Synchronization
import XCTest

/// issue 18, member tags: `Configuration.tags` / `--tag`, `agent.setTags`, tag lines of the
/// settings file on reload, the views that hold them, `members`, and targets that select by
/// them. Real agents on loopback; every wait is a condition with a generous deadline.
final class TagsAgentTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        try Loopback.requireMulticast()
        folder = NSTemporaryDirectory() + "starling-tags-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// The tags `viewer` holds for the member named `name`.
    private func tags(_ viewer: Agent, of name: String) -> MemberTags? {
        viewer.members().first { $0.name == name && $0.isLive }?.tags
    }

    func testViewsHoldTagsAChangeReachesThemAndTargetsSelectByThem() async throws {
        let group = Loopback.group()
        let web = try MemberTags(["role": "web", "zone": "a"])
        let db = try MemberTags(["role": "db"])
        let a = try Loopback.agent("ta", group: group) { $0.tags = web }
        defer { a.shutdown(); a.waitUntilFinished() }
        let b = try Loopback.agent("tb", group: group) { $0.tags = db }
        defer { b.shutdown(); b.waitUntilFinished() }
        let c = try Loopback.agent("tc", group: group)
        defer { c.shutdown(); c.waitUntilFinished() }
        let changes = Mutex<[String]>([])
        c.onEvent { event in
            if let cluster = ClusterEvent(event), case .tagsChanged(let name, _, let tags) = cluster { changes.withLock { $0.append("\(name) \(tags)") } }
        }
        // a's view of tc too: tc's view can come whole from b's answer before a has read tc's ANNOUNCE.
        XCTAssertTrue(Loopback.eventually(20) {
            self.tags(c, of: "ta") == web && self.tags(c, of: "tb") == db && self.tags(a, of: "tb") == db && self.tags(a, of: "tc") != nil
        },
            "\(c.members().map { "\($0.name) \($0.tags)" })")
        XCTAssertEqual(tags(a, of: "tc"), .empty)
        XCTAssertEqual(a.tags, web)

        let pinged = try await c.ping(target: "role=web")
        XCTAssertEqual(pinged.map(\.name), ["ta"])
        let request = try await c.request("ping", target: "role=*+zone=a,tb")
        XCTAssertEqual(request.expected, 2, "the view's tags tell how many answers to expect")
        XCTAssertEqual(request.replies.map(\.name).sorted(), ["ta", "tb"])

        let moved = try MemberTags(["role": "web", "zone": "b"])
        try await b.setTags(moved)
        XCTAssertEqual(b.tags, moved)
        XCTAssertTrue(Loopback.eventually(20) { self.tags(a, of: "tb") == moved && self.tags(c, of: "tb") == moved })
        XCTAssertTrue(Loopback.eventually(20) { changes.withLock { $0.contains("tb role=web,zone=b") } }, "\(changes.withLock { $0 })")
        let both = try await c.ping(target: "role=web")
        XCTAssertEqual(both.map(\.name).sorted(), ["ta", "tb"])
        let stats = try await a.stats(target: "zone=b")
        XCTAssertEqual(stats.map(\.name), ["tb"], "this agent's own tags decide whether it is in `stats`")
    }

    func testTheCLIShowsTagsAndTheSettingsFileChangesThemOnReload() async throws {
        let group = Loopback.group()
        let settings = "\(folder)/agent.conf"
        try "tag = role=web\ntag = zone=a\n".write(toFile: settings, atomically: true, encoding: .utf8)
        let a = try Loopback.agent("ra", group: group) { $0.settingsFile = settings }
        defer { a.shutdown(); a.waitUntilFinished() }
        let b = try Loopback.agent("rb", group: group) {
            $0.eventHandlers = [EventHandler(filter: ["member-update"], command: "env | grep STARLING_MEMBER_TAGS >> \(self.folder)/env")]
        }
        defer { b.shutdown(); b.waitUntilFinished() }
        XCTAssertEqual(a.tags, try MemberTags(["role": "web", "zone": "a"]), "tag lines of the settings file at start")
        XCTAssertTrue(Loopback.eventually(20) { self.tags(b, of: "ra") == a.tags })
        let base = ["--group", group.description, "--interface", "lo", "--timeout", "5"]

        let (code, json, errors) = try Loopback.run(["members", "--to", "rb", "--json"] + base)
        XCTAssertEqual(code, 0, errors)
        let rows = try XCTUnwrap(JSON.parse(json).arrayValue, json)
        XCTAssertEqual(rows.first { $0["name"]?.stringValue == "ra" }?["tags"], .object([("role", .string("web")), ("zone", .string("a"))]))
        XCTAssertNil(rows.first { $0["name"]?.stringValue == "rb" }?["tags"], "no tags: no field")
        let (tableCode, table, _) = try Loopback.run(["members", "--to", "rb"] + base)
        XCTAssertEqual(tableCode, 0)
        XCTAssertTrue(table.contains("TAGS") && table.contains("role=web,zone=a"), table)
        let (pingCode, pinged, pingErrors) = try Loopback.run(["ping", "--to", "zone=a"] + base)
        XCTAssertEqual(pingCode, 0, pingErrors)
        XCTAssertTrue(pinged.contains("ra") && !pinged.contains("rb"), pinged)

        try "tag = role=db\n".write(toFile: settings, atomically: true, encoding: .utf8)
        let changed = try a.reload()
        XCTAssertEqual(changed, ["tags role=db"])
        XCTAssertTrue(Loopback.eventually(20) { self.tags(b, of: "ra") == (try? MemberTags(["role": "db"])) })
        XCTAssertTrue(Loopback.eventually(20) { ((try? String(contentsOfFile: "\(self.folder)/env", encoding: .utf8)) ?? "").contains("STARLING_MEMBER_TAGS=role=db") })
        try "log-level = error\n".write(toFile: settings, atomically: true, encoding: .utf8)
        XCTAssertEqual(try a.reload(), ["tags none"], "tags that came from the file go with its last tag line")
        XCTAssertTrue(Loopback.eventually(20) { self.tags(b, of: "ra") == .empty })
        try "tag = bad\n".write(toFile: settings, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try a.reload(), "a bad tag line changes nothing")
        XCTAssertEqual(a.tags, .empty)
    }

    func testAMemberJoinsWithItsTags() throws {
        // issue 18 tags: a member heard first-hand (its ANNOUNCE) joins with its tags, so a
        // `member-join` handler has them as Serf's has, and `watch`/the event log show them.
        let group = Loopback.group()
        let b = try Loopback.agent("jb", group: group) {
            $0.eventHandlers = [EventHandler(filter: ["member-join"], command: "env | grep STARLING_MEMBER_ >> \(self.folder)/join")]
        }
        defer { b.shutdown(); b.waitUntilFinished() }
        let a = try Loopback.agent("ja", group: group) { $0.tags = try! MemberTags(["role": "web"]) }
        defer { a.shutdown(); a.waitUntilFinished() }
        XCTAssertTrue(Loopback.eventually(20) {
            let text = (try? String(contentsOfFile: "\(self.folder)/join", encoding: .utf8)) ?? ""
            return text.contains("STARLING_MEMBER_NAME=ja") && text.contains("STARLING_MEMBER_TAGS=role=web")
        }, (try? String(contentsOfFile: "\(folder)/join", encoding: .utf8)) ?? "no run")
    }

    func testBadTagFlagsAreUsageErrors() throws {
        let group = Loopback.group()
        for bad in [["--tag", "noequals"], ["--tag", "a=1", "--tag", "a=2"], ["--tag", "k=" + String(repeating: "v", count: 256)],
                    ["--tag", "a*=1"], ["--tag", "=v"]] {
            let (code, _, errors) = try Loopback.run(["agent", "--name", "bad", "--group", group.description] + bad)
            XCTAssertEqual(code, 2, "\(bad): \(errors)")
            XCTAssertTrue(errors.contains("--tag"), errors)
        }
    }
}
