@testable import StarlingCore
import XCTest

/// The view's table and its row indices (Protocol.md A.2 item 3), against a dictionary model.
final class MemberTableTests: XCTestCase {
    func member(_ id: NodeID, _ name: String, incarnation: UInt32 = 0) -> Member {
        Member(id: id, name: name, endpoint: Endpoint(ip: IPAddress(ipv4: 0x7F00_0001), port: 7000), incarnation: incarnation,
               status: .alive, lastHeard: 0, statusSince: 0)
    }

    /// Random stores, renames and removals over a few names shared by many ids: the table finds
    /// what a `[NodeID: Member]` holds, and each name leads to the id stored last under it while
    /// that id is in the view — the `[ByteString: NodeID]` the name index replaced.
    /// The same with the table reserved first (``PeerConfig/expectedMembers``), for fewer and
    /// for more members than come.
    func testAgreesWithADictionaryUnderRandomChurn() {
        for reserved in [0, 100, 1_000] { churn(reserving: reserved) }
    }

    private func churn(reserving reserved: Int) {
        var rng = SplitMix64(seed: 7)
        var table = MemberTable()
        table.reserveCapacity(reserved)
        var model: [NodeID: Member] = [:]
        var latest: [ByteString: NodeID] = [:]
        // "é" precomposed and decomposed: two names, as bytes.
        let names = ["a", "b", "c", "\u{E9}", "e\u{301}", "node-with-a-name-longer-than-fifteen-bytes"]
        for step in 0..<20_000 {
            let id = NodeID(high: 1, low: rng.next() % 300)
            let name = names[Int(rng.next() % UInt64(names.count))]
            switch rng.next() % 4 {
            case 0:
                if let old = model[id], latest[ByteString(old.name)] == id { latest[ByteString(old.name)] = nil }
                table[id] = nil
                model[id] = nil
            case 1:
                table.modify(id) { $0.name = name; $0.incarnation &+= 1 }
                if var row = model[id] {
                    if latest[ByteString(row.name)] == id, !row.name.utf8.elementsEqual(name.utf8) { latest[ByteString(row.name)] = nil }
                    if !row.name.utf8.elementsEqual(name.utf8) { latest[ByteString(name)] = id }
                    row.name = name
                    row.incarnation &+= 1
                    model[id] = row
                }
            default:
                if let old = model[id], latest[ByteString(old.name)] == id { latest[ByteString(old.name)] = nil }
                table[id] = member(id, name, incarnation: UInt32(step))
                model[id] = member(id, name, incarnation: UInt32(step))
                latest[ByteString(name)] = id
            }
            XCTAssertEqual(table.count, model.count)
            if step % 97 == 0 {
                for low in 0..<300 {
                    let probe = NodeID(high: 1, low: UInt64(low))
                    XCTAssertEqual(table[probe], model[probe], "reserved \(reserved) step \(step)")
                }
                for name in names { XCTAssertEqual(table.latest(named: name), latest[ByteString(name)], "step \(step) name \(name)") }
                XCTAssertEqual(Set(table.keys), Set(model.keys))
            }
        }
        XCTAssertNil(table.latest(named: "absent"))
    }

    func testAnIdChangedInPlaceIsUndone() {
        var table = MemberTable()
        let id = NodeID(high: 2, low: 1)
        table[id] = member(id, "x")
        table.modify(id) { $0.id = NodeID(high: 9, low: 9) }
        XCTAssertEqual(table[id]?.id, id)
        XCTAssertNil(table[NodeID(high: 9, low: 9)])
    }
}
