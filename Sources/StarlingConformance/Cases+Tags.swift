import StarlingCore
import StarlingPOSIX

/// Member tags (issue 18, Protocol.md §3.4.1).
extension Suite {
    /// §3.4.1: the target holds the tags a member's own PING carried, keeps them against a
    /// datagram of an older incarnation, and drops them when a carrier at the current one has
    /// none — as its `members` reply shows.
    func holdsTagsByIncarnation() -> Verdict {
        guard let targetID = peer.targetID else { return .skip("target unknown") }
        func ping(_ tags: MemberTags, incarnation: UInt32) {
            let saved = peer.incarnation
            peer.incarnation = incarnation
            peer.sendRaw(peer.encode(.ping(Ping(probeID: 1, target: targetID, revoked: .empty)), extensions: tags.extensions))
            peer.incarnation = saved
        }
        func held() -> JSON? {
            guard let rows = memberRows(),
                  let row = rows.first(where: { $0["id"]?.stringValue == peer.id.description }) else { return .null }
            return row["tags"]
        }
        guard let one = try? MemberTags(["conformance": "one"]), let two = try? MemberTags(["conformance": "two", "zone": "z"]),
              let stale = try? MemberTags(["conformance": "stale"]) else { return .fail("tags") }
        ping(one, incarnation: peer.incarnation)
        guard held() == one.json else { return .fail("after a PING with tags, `members` shows \(held()?.serialized() ?? "no tags")") }
        peer.incarnation += 1
        ping(two, incarnation: peer.incarnation)
        ping(stale, incarnation: peer.incarnation - 1)
        guard held() == two.json else { return .fail("a PING of an older incarnation changed the tags: \(held()?.serialized() ?? "none")") }
        ping(.empty, incarnation: peer.incarnation)
        let gone = held()
        return gone == nil ? .pass : .fail("a PING without tags at the current incarnation left \(gone?.serialized() ?? "no row")")
    }

    /// §3.4.1: tags with keys out of byte order make the datagram `invalid_value`.
    func dropsMalformedTags() -> Verdict {
        let before = peer.drops("invalid_value")
        let pairs: [UInt8] = [1, 0x62, 0, 1, 0x61, 0]
        peer.sendRaw(rawMalformed(pairs))
        System.sleep(millis: 50)
        let after = peer.drops("invalid_value")
        return after > before ? .pass : .fail("drops.invalid_value did not grow (\(Int(before)) → \(Int(after)))")
    }

    /// A PING whose tags entry holds `pairs` as they are (the encoder refuses to write them).
    private func rawMalformed(_ pairs: [UInt8]) -> [UInt8] {
        var bytes = peer.encode(.ping(Ping(probeID: 1, target: peer.targetID ?? peer.id, revoked: .empty)))
        if keyed { bytes.removeLast(Limits.tagLength) }
        bytes[7] |= UInt8(truncatingIfNeeded: Limits.flagExtensions)
        bytes += [0, UInt8(2 + pairs.count), Limits.tagsExtension, UInt8(pairs.count)] + pairs
        if let key = peer.codec.keys.first { bytes += key.tag(bytes) }
        return bytes
    }
}
