import Starling
import StarlingCore
import StarlingPOSIX

/// The outcome of one case.
enum Verdict {
    case pass
    case fail(String)
    case skip(String)
}

/// The conformance cases, each named after the Protocol.md section whose MUST or SHOULD it
/// checks. They run in order against one target; earlier cases find the target.
struct Suite {
    let peer: FakePeer
    let interface: Interface
    let keyed: Bool
    let wrongKey: Codec

    var cases: [(String, () -> Verdict)] {
        [
            // Membership of version 2 (§6.1), while the target's local health is fresh.
            ("6.1.5/probes-announced-newcomer-within-2n-periods", probesNewcomer),
            ("6.1.2/answers-announce-with-members", answersAnnounce),
            ("6.1.5/answers-ping-with-ack", answersPing),
            ("6.1.5/acks-ping-req-about-itself", acksPingRequestAboutItself),
            ("6.1.5/ping-req-relays-ack-of-live-member", relaysPingRequest),
            ("6.1.3/refutes-suspicion-with-change-alive", refutesWithChange),
            ("6.1.3/refutes-death-with-change-alive", refutesDeath),
            ("6.1.3/change-dead-is-checked-then-dead", appliesChangeDead),
            ("6.1.3/hearsay-death-over-suspicion-waits", hearsayDeathWaits),
            ("6.1.3/hearsay-of-life-tells-the-dead", hearsayOfLifeTellsTheDead),
            ("6.1.6/witness-pings-suspect-at-once", witnessPings),
            ("6.1.3/failed-death-check-by-no-witness-is-quiet", deathCheckIsQuiet),
            ("6.1.5/quiet-accusation-after-comeback", quietAccusation),
            ("6.3.1/hello-reply-carries-clock-and-digest", helloReply),
            ("6.3.1/announce-carrying-hello-is-answered", carriedHelloReply),
            ("4.2/adjusts-clock-past-received-stamp", adjustsClock),
            ("4.1/stamps-increase", stampsIncrease),
            ("3.2/serves-revoked-pages", servesPages),
            ("6.3.2/survives-lost-page-request", survivesLostPage),
            ("6.1.2/goodbye-means-left", goodbyeIsLeft),
            ("5.1/drops-bad-magic", { dropped("bad_magic") { bytes in bytes[0] = 0x58 } }),
            ("5.1/drops-unknown-version", { dropped("unsupported_version") { bytes in bytes[4] = 9 } }),
            ("5.1/drops-truncated", { dropped("truncated") { bytes in bytes.removeLast(keyed ? Limits.tagLength + 3 : 3) } }),
            ("5.1/drops-trailing-bytes", { dropped("trailing_bytes") { bytes in bytes.append(0) } }),
            ("2.3/drops-oversized", { dropped("oversized") { bytes in bytes += [UInt8](repeating: 0, count: 1_401) } }),
            ("5.1/drops-unknown-type", { dropped("unknown_type") { bytes in bytes[5] = 0x7E; resign(&bytes) } }),
            ("2.1/ignores-own-echo", ignoresOwnEcho),
            ("4.3/never-prefers-higher-stamp", electionOrder),
            ("3.5/control-reply-addressed-to-request-id", controlReply),
            ("3.5/ignores-non-matching-target", ignoresOtherTargets),
            ("3.5.1/runs-a-request-once-repeats-its-reply", runsOnce),
            ("3.5.1/refuses-shutdown-without-key", refusesShutdown),
            ("3.5/pages-a-large-reply", pagedReply),
            ("3.5.1/watch-streams-events", watchStream),
            ("3.5.1/revoked-pages-by-limit-and-cursor", revokedPaging),
            ("6.7/user-event-delivered-once-every-copy-acknowledged", userEventOnce),
            ("3.4.1/holds-tags-by-incarnation", holdsTagsByIncarnation),
            ("3.4.1/drops-malformed-tags", dropsMalformedTags),
            ("7.3/refuses-stale-command", refusesStaleCommand),
            ("3.2/answers-digest-request", answersDigest),
            ("6.1.4/answers-members-push-pull", answersMembers),
            ("6.4/joins-a-higher-term-silently", joinsHigherTerm),
            ("6.4/ignores-stale-term", ignoresStaleTerm),
            ("7.2/rejects-missing-tag", { tagCase("missing_tag", sign: .none) }),
            ("7.2/rejects-wrong-tag", { tagCase("bad_tag", sign: .wrong) }),
            ("7.3/rejects-replayed-datagram", replay),
        ]
    }

    // MARK: Membership

    func helloReply() -> Verdict {
        let stamp = peer.stamp + 10
        peer.toGroup(.hello(Hello(requestID: 4242, revoked: .empty)), stamp: stamp)
        guard let received = peer.expect(1_000, { if case .helloReply(let r) = $0.message.payload { r.requestID == 4242 && $0.unicast } else { false } }),
            case .helloReply(let reply) = received.message.payload
        else { return .fail("no HELLO_REPLY with the request id by unicast") }
        guard received.message.header.stamp > stamp else { return .fail("reply stamp \(received.message.header.stamp) not past \(stamp)") }
        return reply.memberCount >= 1 ? .pass : .fail("member_count 0")
    }

    /// A starting peer's first ANNOUNCE carries its HELLO (extension type 0x03): answered with
    /// a HELLO_REPLY as a HELLO would be (with two members the target is a responder).
    func carriedHelloReply() -> Verdict {
        peer.sendRaw(peer.encode(.announce(Announcement(memberCount: 1, revoked: .empty)), extensions: [Message.carrying(hello: 4343)]), to: peer.group)
        let reply = peer.expect(1_000) { if case .helloReply(let r) = $0.message.payload { r.requestID == 4343 && $0.unicast } else { false } }
        return reply != nil ? .pass : .fail("no HELLO_REPLY with the request id of the HELLO the ANNOUNCE carried")
    }

    func adjustsClock() -> Verdict {
        let high = peer.stamp + 1_000_000
        peer.send(.ping(Ping(probeID: 77, target: peer.targetID ?? peer.id, revoked: .empty)), stamp: high)
        // The ACK answers this very PING, so it is sent after the stamp was received; any other
        // datagram may have left before it (or come from another host on the group).
        let next = peer.expect(1_000) { if case .ack(let ack) = $0.message.payload { ack.probeID == 77 } else { false } }
        guard let next else { return .fail("no ACK to the PING") }
        return next.message.header.stamp > high ? .pass : .fail("ACK stamp \(next.message.header.stamp) not past received \(high)")
    }

    func stampsIncrease() -> Verdict {
        // Stamps increase in the order the target sent its datagrams, its sequence order: the
        // group and unicast sockets are read in turn, so arrival order can differ. One datagram
        // sent to several destinations carries one sequence and one stamp. Two PINGs make the
        // target answer at least twice; another fake peer's GOODBYE may still be queued.
        var stamps: [UInt64: UInt64] = [:]
        for (probeID, millis) in [(UInt32(1), UInt64(300)), (2, 600)] {
            peer.ping(probeID)
            _ = peer.expect(millis) { received in
                let header = received.message.header
                if header.sender == peer.targetID { stamps[header.sequence] = header.stamp }
                return false
            }
        }
        guard stamps.count >= 2 else { return .fail("heard \(stamps.count) datagram(s) from the target in 0.9 s, after two PINGs") }
        let inOrder = stamps.sorted { $0.key < $1.key }.map(\.value)
        return zip(inOrder, inOrder.dropFirst()).allSatisfy({ $0 < $1 }) ? .pass
            : .fail("stamps did not strictly increase with the sequence: \(inOrder.prefix(8))")
    }

    func goodbyeIsLeft() -> Verdict {
        let leaver = try? FakePeer(interface: interface, group: peer.group, cluster: peer.cluster, keys: peer.codec.keys, name: "conformance-leaver")
        guard let leaver else { return .skip("cannot open a second fake peer") }
        leaver.target = peer.target
        leaver.targetID = peer.targetID
        leaver.ping()
        guard listed(leaver, as: "alive") else { return .fail("a member that PINGed the target is not listed alive within 2 s") }
        leaver.toGroup(.goodbye)
        guard listed(leaver, as: "left", within: 1_000) else {
            return .fail("status after GOODBYE is \(status(of: leaver) ?? "absent")")
        }
        return .pass
    }

    // MARK: Revoked set

    func servesPages() -> Verdict {
        guard peer.control("revoke", ["conformance-id-1", "conformance-id-2"])?.0 == .ok else { return .fail("revoke command not acknowledged") }
        var ids: [String] = []
        var sawLast = false
        peer.send(.pageRequest(PageRequest(requestID: 5151, bucketMask: .max, maxPages: 8, cursor: "")))
        _ = peer.expect(1_000) { received in
            guard case .page(let page) = received.message.payload, page.requestID == 5151 else { return false }
            ids += page.entries.map(\.id)
            sawLast = page.last
            return page.last
        }
        guard sawLast else { return .fail("no PAGE with last set") }
        guard ids.contains("conformance-id-1"), ids.contains("conformance-id-2") else { return .fail("pages lack the revoked ids") }
        return ids == ids.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) ? .pass : .fail("ids not in byte order")
    }

    func survivesLostPage() -> Verdict {
        // The first request is "lost" (its answer ignored); asking again gets the same answer.
        peer.send(.pageRequest(PageRequest(requestID: 6161, bucketMask: .max, maxPages: 1, cursor: "conformance-id-1")))
        peer.drain()
        peer.send(.pageRequest(PageRequest(requestID: 6162, bucketMask: .max, maxPages: 1, cursor: "conformance-id-1")))
        let page = peer.expect(1_000) { if case .page(let p) = $0.message.payload { p.requestID == 6162 } else { false } }
        guard let page, case .page(let body) = page.message.payload else { return .fail("retried PAGE_REQUEST not answered") }
        return body.entries.first?.id == "conformance-id-2" ? .pass : .fail("retry did not resume after the cursor")
    }

    // MARK: Input validation

    /// With a key, a mutated header needs a fresh tag so that the check under test is reached.
    func resign(_ bytes: inout [UInt8]) {
        guard let key = peer.codec.keys.first else { return }
        bytes.removeLast(Limits.tagLength)
        bytes += key.tag(bytes)
    }

    func dropped(_ reason: String, _ mutate: (inout [UInt8]) -> Void) -> Verdict {
        let before = peer.drops(reason)
        var bytes = peer.encode(.ping(Ping(probeID: 1, target: peer.targetID ?? peer.id, revoked: .empty)))
        mutate(&bytes)
        peer.sendRaw(bytes)
        System.sleep(millis: 50)
        guard let stats = peer.control("stats") else { return .fail("agent stopped answering after a malformed datagram") }
        let after = stats.1["drops"]?[reason]?.numberValue ?? 0
        return after > before ? .pass : .fail("drops.\(reason) did not grow (\(Int(before)) → \(Int(after)))")
    }

    func ignoresOwnEcho() -> Verdict {
        guard let rows = memberRows(), let id = peer.targetID else { return .fail("no members reply") }
        let copies = rows.filter { $0["id"]?.stringValue == id.description }
        return copies.count == 1 && copies[0]["self"]?.boolValue != false ? .pass : .fail("the agent lists itself as a member \(copies.count) times")
    }

    // MARK: Election and control

    func electionOrder() -> Verdict {
        // The agent stands first (an `elect` request: its own candidacy, decided a window
        // later); then our candidacy of that term arrives, its stamp lower than anything the
        // agent can send. By §4.3 it must win, even after the decision (§6.4). The agent must
        // hold a candidacy of its own, or electing the highest would pick ours all the same.
        let topic = "conformance-\(System.randomUInt64() % 1_000_000)"
        // This fake peer answers PINGs only while it reads, so the target may hold it dead: come
        // back with a higher incarnation (§6.1.3) before standing.
        peer.revive()
        System.sleep(millis: 50)
        guard let elected = peer.control("elect", [topic])?.1, let term = elected["term"]?.numberValue.flatMap({ UInt64(exactly: $0) }), term >= 1 else {
            return .fail("no decision in answer to elect")
        }
        peer.toGroup(.candidacy(Candidacy(term: term, topic: topic)))
        System.sleep(millis: 100)
        peer.ping()
        let view = peer.control("leader", [topic])?.1
        guard view?["leader"]?.stringValue == peer.name else { return .fail("agent's leader is \(view?["leader"]?.plain ?? "none"), not the lower stamp") }
        return .pass
    }

    func controlReply() -> Verdict {
        guard let (status, body) = peer.control("ping") else { return .fail("no CONTROL_REPLY with the request id") }
        return status == .ok && body["name"]?.stringValue != nil ? .pass : .fail("reply status \(status) body \(body.serialized())")
    }

    func ignoresOtherTargets() -> Verdict {
        peer.send(peer.request(7001, "ping", target: "no-such-agent-*"))
        let reply = peer.expect(300) { if case .controlReply(let r) = $0.message.payload { r.requestID == 7001 } else { false } }
        return reply == nil ? .pass : .fail("answered a request addressed to other names")
    }

    func runsOnce() -> Verdict {
        // A revoke shows whether it ran twice: a second run would report `stored: 0`.
        let id = "conformance-once-\(UInt32.random(in: 0...UInt32.max))"
        let request = peer.request(7002, "revoke", args: [id])
        let bytes = peer.encode(request)
        peer.sendRaw(bytes)
        // The same request again (a new datagram, same sender and request id): a retry.
        peer.send(request)
        var bodies: [[UInt8]] = []
        _ = peer.expect(400) { received in
            if case .controlReply(let r) = received.message.payload, r.requestID == 7002 { bodies.append(r.body) }
            return false
        }
        guard bodies.count == 2 else { return .fail("\(bodies.count) replies to a request and its retry (want 2)") }
        return bodies[0] == bodies[1] ? .pass : .fail("the retry got a different reply (the request ran twice)")
    }

    func refusesShutdown() -> Verdict {
        guard !keyed else { return .skip("the target runs with a key") }
        guard let name = peer.targetName else { return .skip("target name unknown") }
        peer.send(peer.request(7003, "shutdown", target: name))
        let reply = peer.expect(500) { if case .controlReply(let r) = $0.message.payload { r.requestID == 7003 } else { false } }
        guard let reply, case .controlReply(let body) = reply.message.payload else { return .fail("no reply to shutdown") }
        return body.status == .refused ? .pass : .fail("shutdown status \(body.status) without a key")
    }

    func answersDigest() -> Verdict {
        peer.send(.digestRequest(requestID: 7004))
        let reply = peer.expect(500) { if case .digestReply(let r) = $0.message.payload { r.requestID == 7004 } else { false } }
        guard let reply, case .digestReply(let body) = reply.message.payload else { return .fail("no DIGEST_REPLY with the request id") }
        let total = body.buckets.reduce(0) { $0 + Int($1.count) }
        let count = Int(peer.control("stats")?.1["revoked"]?.numberValue ?? -1)
        return total == count ? .pass : .fail("bucket counts sum to \(total), stats says \(count)")
    }

    func answersMembers() -> Verdict {
        guard let target = peer.targetID else { return .skip("target unknown") }
        let me = MemberEntry(id: peer.id, incarnation: peer.incarnation, status: .alive, endpoint: Endpoint(ip: peer.unicast.local.ip.unspecified, port: peer.unicast.local.port),
            name: peer.name)
        peer.send(.members(MembersPage(replyWanted: true, page: 0, pageCount: 1, entries: [me])))
        let reply = peer.expect(500) { received in
            guard case .members(let page) = received.message.payload else { return false }
            return !page.replyWanted && page.entries.contains { $0.id == target }
        }
        return reply == nil ? .fail("no MEMBERS answer carrying the target's own entry") : .pass
    }

    func joinsHigherTerm() -> Verdict {
        // §6.4: a peer enters a higher term it hears of, silently (its clock is already past
        // the candidacy it heard), and decides a window later with what it holds: ours.
        let topic = "conformance-term-\(System.randomUInt64() % 1_000_000)"
        peer.revive()
        peer.toGroup(.candidacy(Candidacy(term: 7, topic: topic)))
        let own = peer.expect(300) { if case .candidacy(let c) = $0.message.payload { c.topic == topic } else { false } }
        if own != nil { return .fail("sent a CANDIDACY on joining term 7 (a joiner stays silent)") }
        peer.ping()
        let view = peer.control("leader", [topic])?.1
        guard view?["term"]?.numberValue == 7, view?["leader"]?.stringValue == peer.name else {
            return .fail("after a term-7 candidacy: leader \(view?["leader"]?.plain ?? "none"), term \(view?["term"]?.plain ?? "?")")
        }
        return .pass
    }

    func ignoresStaleTerm() -> Verdict {
        let topic = "conformance-stale-\(System.randomUInt64() % 1_000_000)"
        peer.revive()
        peer.toGroup(.candidacy(Candidacy(term: 5, topic: topic)))
        System.sleep(millis: 100)
        peer.ping()
        let before = peer.control("leader", [topic])?.1
        let stranger = NodeID(high: 0, low: 0)
        peer.toGroup(.leader(LeaderAnnouncement(term: 4, leader: stranger, leaderStamp: 0, topic: topic, leaderName: "stale-leader")))
        System.sleep(millis: 100)
        let after = peer.control("leader", [topic])?.1
        guard before?["term"]?.numberValue == 5 else { return .fail("term after a term-5 candidacy is \(before?["term"]?.plain ?? "?")") }
        return after?["leader"]?.stringValue != "stale-leader" && after?["term"]?.numberValue == 5 ? .pass : .fail("adopted a leader of term 4")
    }

    // MARK: Keys

    enum Signing { case none, wrong }

    func tagCase(_ reason: String, sign: Signing) -> Verdict {
        guard keyed, let target = peer.targetID else { return .skip("applies to a keyed target: run with --key-file against an agent that has the key") }
        let header = peer.header()
        let message = Message(header: header, payload: .ping(Ping(probeID: 31, target: target, revoked: .empty)))
        let bytes = (try? (sign == .none ? Codec() : wrongKey).encode(message)) ?? []
        let before = peer.drops(reason)
        peer.sendRaw(bytes)
        let ack = peer.expect(300) { if case .ack(let a) = $0.message.payload { a.probeID == 31 } else { false } }
        if ack != nil { return .fail("answered a datagram with \(sign == .none ? "no" : "a wrong") tag") }
        return peer.drops(reason) > before ? .pass : .fail("drops.\(reason) did not grow")
    }

    func replay() -> Verdict {
        guard keyed, let target = peer.targetID else { return .skip("applies to a keyed target: run with --key-file against an agent that has the key") }
        let bytes = peer.encode(.ping(Ping(probeID: 41, target: target, revoked: .empty)))
        peer.sendRaw(bytes)
        guard peer.expect(500, { if case .ack(let a) = $0.message.payload { a.probeID == 41 } else { false } }) != nil else {
            return .fail("the original datagram was not answered")
        }
        let before = peer.drops("replay")
        peer.sendRaw(bytes)
        if peer.expect(300, { if case .ack(let a) = $0.message.payload { a.probeID == 41 } else { false } }) != nil {
            return .fail("the replayed datagram was answered")
        }
        return peer.drops("replay") > before ? .pass : .fail("drops.replay did not grow")
    }
}
