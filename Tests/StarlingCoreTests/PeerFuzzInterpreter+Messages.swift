// Structured datagrams for the stateful Peer fuzz target: any of the 19 message types of
// version 2, fields at the edges of their widths, ids and names that collide (the receiver's own
// id in CHANGE and piggyback entries: suspicions and deaths to refute), probe ids the peer sent,
// encoded with the receiving peer's own codec so that they pass framing and tag checks and reach
// the protocol logic.
#if canImport(StarlingCore)
@testable import StarlingCore
#endif

/// Values the peers under test sent recently (request ids, probe ids, terms, topics), so that
/// fuzzed replies can echo them and be accepted.
struct FuzzMemory {
    var requestIDs: [UInt32] = []
    var probes: [Probe] = []
    var terms: [UInt64] = []
    var topics: [String] = []

    mutating func note(_ payload: Payload) {
        switch payload {
        case .hello(let hello): Self.push(hello.requestID, to: &requestIDs)
        case .pageRequest(let request): Self.push(request.requestID, to: &requestIDs)
        case .digestRequest(let requestID): Self.push(requestID, to: &requestIDs)
        case .controlRequest(let request): Self.push(request.requestID, to: &requestIDs)
        // A fake target can ACK the peer's PING, a fake helper relay it or NACK it.
        case .ping(let ping): Self.push(Probe(probeID: ping.probeID, target: ping.target), to: &probes)
        case .pingRequest(let probe): Self.push(probe, to: &probes)
        case .candidacy(let candidacy): Self.push(candidacy.term, to: &terms); Self.push(candidacy.topic, to: &topics)
        case .leader(let leader): Self.push(leader.term, to: &terms); Self.push(leader.topic, to: &topics)
        case .vote(let vote): Self.push(vote.term, to: &terms); Self.push(vote.topic, to: &topics)
        default: break
        }
    }

    private static func push<T>(_ value: T, to list: inout [T]) {
        if list.count >= 16 { list.removeFirst() }
        list.append(value)
    }
}

extension PeerFuzzInterpreter {
    // MARK: Fields

    mutating func nodeID(_ input: inout FuzzInput, for slot: Int) -> NodeID {
        switch input.below(10) {
        case 0...4: return input.pick(FuzzPools.fakeIDs)
        case 5: return slots[slot].peer.config.id
        case 6: return slots[(slot + 1) % slots.count].peer.config.id
        case 7: return input.pick(FuzzPools.oddIDs)
        case 8: return memory.probes.isEmpty ? FuzzPools.fakeIDs[0] : input.pick(memory.probes).target
        default: return NodeID(high: input.raw(UInt64.self), low: input.raw(UInt64.self))
        }
    }

    func name(_ input: inout FuzzInput) -> String {
        input.below(4) == 0 ? input.text(Limits.nameBytes) : input.pick(FuzzPools.names + slots.map(\.peer.config.name))
    }

    func topic(_ input: inout FuzzInput) -> String {
        switch input.below(8) {
        case 0: return input.text(Limits.topicBytes)
        case 1, 2: return memory.topics.isEmpty ? "jobs" : input.pick(memory.topics)
        default: return input.pick(FuzzPools.topics)
        }
    }

    func requestID(_ input: inout FuzzInput) -> UInt32 {
        if !memory.requestIDs.isEmpty, input.below(3) > 0 { return input.integer(UInt32.self, near: input.pick(memory.requestIDs)) }
        return input.integer(UInt32.self)
    }

    func term(_ input: inout FuzzInput) -> UInt64 {
        input.integer(UInt64.self, near: memory.terms.isEmpty ? 1 : input.pick(memory.terms))
    }

    func endpoint(_ input: inout FuzzInput) -> Endpoint {
        if input.below(4) > 0 { return slots[input.below(slots.count)].endpoint }
        // The peers' family (the same input bytes in either: stored programs keep their meaning);
        // entries of the other family come from `entry` (Protocol.md §2.5).
        let v4 = input.pick(FuzzPools.addresses)
        let ip = loopback.family == .ipv4 ? IPAddress(ipv4: v4) : IPAddress(high: v4 == 0 ? 0 : 0xFE80_0000_0000_0000, low: UInt64(v4))
        return Endpoint(ip: ip, port: input.pick(FuzzPools.ports))
    }

    func digest(_ input: inout FuzzInput, for slot: Int) -> SetDigest {
        input.below(3) == 0 ? slots[slot].peer.revoked.digest : SetDigest(count: input.integer(UInt32.self), hash: input.integer(UInt64.self))
    }

    /// Member entries: none, one, a few or more than any datagram holds (cut back to fit).
    mutating func entries(_ input: inout FuzzInput, for slot: Int) -> [MemberEntry] {
        let count = input.pick([0, 1, 2, 8, 64, Int(input.byte() % 70)])
        return (0..<count).map { _ in entry(&input, for: slot) }
    }

    /// One member entry: any id (the receiver's own among them), status and incarnation near
    /// the receiver's, an endpoint of the peers' family, sometimes a random IPv6 address (of the
    /// other family in an IPv4 cluster).
    mutating func entry(_ input: inout FuzzInput, for slot: Int) -> MemberEntry {
        let me = slots[slot].peer
        let id = nodeID(&input, for: slot)
        let incarnation = input.integer(UInt32.self, near: me.incarnation)
        let status = MemberStatus(rawValue: input.byte() % 4)!
        let at = endpoint(&input)
        var entry = MemberEntry(id: id, incarnation: incarnation, status: status, endpoint: at, name: name(&input))
        if at.port == 1 { entry.address = .ipv6(high: input.raw(UInt64.self), low: 1) }
        return entry
    }

    /// A probe id and target: mostly one this peer sent (so that ACKs and NACKs match), or edges.
    mutating func probe(_ input: inout FuzzInput, for slot: Int) -> Probe {
        var probe = Probe(probeID: input.integer(UInt32.self), target: nodeID(&input, for: slot))
        if !memory.probes.isEmpty, input.below(2) == 0 { probe = input.pick(memory.probes) }
        return probe
    }

    /// An extension area now and then (Protocol.md §3.4): types this version does not know, which a
    /// peer must skip, empty or at the longest value.
    func extensions(_ input: inout FuzzInput) -> [Extension] {
        // Member tags (issue 18, §3.4.1) on one datagram in four: on a carrier they are the sender's.
        let tags = input.below(4) == 0 ? input.pick(FuzzPools.tags).extensions : []
        guard input.below(8) == 0 else { return tags }
        return tags + (0..<(1 + input.below(3))).map { index in
            Extension(type: input.byte() | 0x40 &+ UInt8(index), value: [UInt8](repeating: input.byte(), count: input.pick([0, 1, 255])))
        }
    }

    /// Version ranges: mostly what this implementation speaks, sometimes none it does.
    func versions(_ input: inout FuzzInput) -> VersionRange {
        input.below(4) > 0 ? .spoken : VersionRange(lowest: input.integer(UInt8.self), highest: input.integer(UInt8.self))
    }

    // MARK: Messages

    /// A payload of `type` with fields drawn from the input.
    mutating func payload(_ type: MessageType, _ input: inout FuzzInput, for slot: Int) -> Payload {
        let me = slots[slot].peer
        switch type {
        case .announce:
            return .announce(Announcement(versions: versions(&input), memberCount: input.integer(UInt16.self),
                revoked: digest(&input, for: slot)))
        case .goodbye:
            return .goodbye
        case .ping, .ack:
            // A PING names the receiver as its target (or not); an ACK echoes a probe it sent.
            let probe = probe(&input, for: slot)
            let target = type == .ping && input.below(2) == 0 ? me.config.id : probe.target
            let ping = Ping(probeID: probe.probeID, target: target, revoked: digest(&input, for: slot), piggyback: entries(&input, for: slot))
            return type == .ping ? .ping(ping) : .ack(ping)
        case .pingRequest, .nack:
            let probe = probe(&input, for: slot)
            return type == .pingRequest ? .pingRequest(probe) : .nack(probe)
        case .change:
            // Never empty on the wire (Protocol.md §3.4).
            let list = entries(&input, for: slot)
            return .change(list.isEmpty ? [entry(&input, for: slot)] : list)
        case .members:
            let pageCount = max(1, input.integer(UInt8.self, near: 1))
            return .members(MembersPage(replyWanted: input.byte() & 1 == 1, page: UInt8(input.below(Int(pageCount))),
                pageCount: pageCount, entries: entries(&input, for: slot)))
        case .hello:
            return .hello(Hello(versions: versions(&input), requestID: requestID(&input), revoked: digest(&input, for: slot)))
        case .helloReply:
            return .helloReply(HelloReply(versions: versions(&input), requestID: requestID(&input), memberCount: input.integer(UInt16.self),
                revoked: digest(&input, for: slot), members: entries(&input, for: slot)))
        case .pageRequest:
            return .pageRequest(PageRequest(requestID: requestID(&input), bucketMask: input.integer(UInt64.self),
                maxPages: max(1, input.integer(UInt8.self)), cursor: input.below(2) == 0 ? "" : revokedID(&input),
                until: input.below(2) == 0 ? "" : revokedID(&input)))
        case .page:
            let count = input.pick([0, 1, 3, 40, Int(input.byte() % 100)])
            let entries = (0..<count).map { _ in
                RevokedEntry(id: revokedID(&input), revokedAtMillis: input.integer(UInt64.self, near: wallMillis))
            }
            return .page(RevokedPage(requestID: requestID(&input), index: input.integer(UInt8.self), last: input.byte() & 1 == 1, entries: entries))
        case .digestRequest:
            return .digestRequest(requestID: requestID(&input))
        case .digestReply:
            var buckets = me.revoked.bucketDigests
            for _ in 0..<input.below(8) {
                buckets[input.below(buckets.count)] = SetDigest(count: input.integer(UInt32.self), hash: input.integer(UInt64.self))
            }
            return .digestReply(DigestReply(requestID: requestID(&input), buckets: buckets))
        case .candidacy:
            return .candidacy(Candidacy(term: term(&input), topic: topic(&input)))
        case .leader:
            return .leader(LeaderAnnouncement(term: term(&input), leader: nodeID(&input, for: slot),
                leaderStamp: input.integer(UInt64.self, near: me.clock.value), topic: topic(&input), leaderName: name(&input)))
        case .vote:
            return .vote(Vote(term: term(&input), candidate: input.below(2) == 0 ? me.config.id : nodeID(&input, for: slot),
                candidateStamp: input.integer(UInt64.self, near: me.clock.value), topic: topic(&input)))
        case .userEvent:
            // Issue 18: sequences collide (repeats must not deliver twice), names sometimes invalid
            // (the encoder refuses them: nothing is sent), payloads up to the limit.
            let name = input.below(4) == 0 ? input.text(Limits.userEventNameBytes) : input.pick(FuzzPools.topics)
            return .userEvent(UserEvent(requestID: requestID(&input), sequence: max(1, input.integer(UInt32.self, near: 1)),
                stamp: input.integer(UInt64.self, near: me.clock.value), name: name,
                payload: input.below(2) == 0 ? "" : input.text(0...input.pick([8, 1_024]))))
        case .controlRequest:
            return .controlRequest(controlRequest(&input))
        case .controlReply:
            let pageCount = max(1, input.integer(UInt16.self, near: 1))
            let body = input.below(2) == 0 ? Array(#"{"name":"x","ok":true}"#.utf8) : (0..<input.below(256)).map { _ in input.byte() }
            return .controlReply(ControlReply(requestID: requestID(&input), status: ControlStatus(rawValue: input.byte() % 4)!,
                memberCount: input.integer(UInt16.self), page: UInt16(truncatingIfNeeded: input.below(Int(min(pageCount, 256)))),
                pageCount: pageCount, body: body))
        }
    }

    func revokedID(_ input: inout FuzzInput) -> String {
        input.below(3) == 0 ? input.text(Limits.revokedIDBytes) : input.pick(FuzzPools.revokedIDs)
    }

    /// A control request any agent could receive: every command, odd numbers and ids as
    /// arguments, globs as targets.
    mutating func controlRequest(_ input: inout FuzzInput) -> ControlRequest {
        let command = input.below(8) == 0 ? input.text(Limits.commandBytes) : input.pick(FuzzPools.commands)
        var args: [String] = []
        for _ in 0..<input.pick([0, 1, 1, 2, 64]) {
            switch input.below(4) {
            case 0: args.append(input.pick(FuzzPools.numbers))
            case 1: args.append(topic(&input))
            case 2: args.append(revokedID(&input))
            default: args.append(input.text(0...300))
            }
        }
        let id = requestID(&input)
        // The issue time follows from the request id, so that the input layout stays as it was
        // before CONTROL_REQUEST carried one: mostly now, sometimes unknown, stale, early or absurd.
        let issued: UInt64
        switch id % 8 {
        case 0: issued = 0
        case 1: issued = wallMillis &- 31_000
        case 2: issued = wallMillis &+ 31_000
        case 3: issued = UInt64.max
        default: issued = wallMillis
        }
        return ControlRequest(requestID: id, issuedMillis: issued, command: command, target: input.pick(FuzzPools.targets), args: args)
    }

    /// A header from a fake sender, mostly in the receiver's cluster and in sequence.
    mutating func header(_ input: inout FuzzInput, for slot: Int) -> Header {
        let me = slots[slot].peer
        let sender = nodeID(&input, for: slot)
        let cluster = input.below(6) == 0 ? input.pick(["starling", FuzzPools.nfc, FuzzPools.nfd, "other", me.config.cluster + "x"]) : me.config.cluster
        let sequence = sequence(&input, for: sender)
        return Header(sequence: sequence, stamp: input.integer(UInt64.self, near: me.clock.value), sender: sender,
            incarnation: input.integer(UInt32.self), replyPort: input.below(4) == 0 ? input.pick(FuzzPools.ports) : 9100,
            cluster: cluster, name: name(&input))
    }

    /// Encodes with `codec`, cutting lists back until the datagram fits and lowering stamps and
    /// terms the encoder refuses to the ceiling (the fuzzer cannot send what no codec writes, so
    /// it sends the nearest that it does; mutated bytes cover the rest). Nil when even that does
    /// not encode.
    static func encode(_ message: Message, with codec: Codec) -> [UInt8]? {
        var message = message
        var lowered = false
        for _ in 0..<300 {
            do {
                return try codec.encode(message)
            } catch .oversized(_) {
                guard let smaller = shrink(message.payload) else { return nil }
                message.payload = smaller
                // Listed tags name entries by position: fewer entries, none listed.
                message.extensions.removeAll { $0.type == Limits.listedTagsExtension }
            } catch .invalidValue(_) where !lowered {
                message = Self.lowered(message)
                lowered = true
            } catch {
                return nil
            }
        }
        return nil
    }

    /// The message with its stamps and terms at most 2^63 − 1 (Protocol.md §4.2, §6.4).
    static func lowered(_ message: Message) -> Message {
        var message = message
        let ceiling = LamportClock.max
        message.header.stamp = min(message.header.stamp, ceiling)
        switch message.payload {
        case .candidacy(var candidacy):
            candidacy.term = min(candidacy.term, Limits.maxTerm)
            message.payload = .candidacy(candidacy)
        case .leader(var leader):
            leader.term = min(leader.term, Limits.maxTerm)
            leader.leaderStamp = min(leader.leaderStamp, ceiling)
            message.payload = .leader(leader)
        case .vote(var vote):
            vote.term = min(vote.term, Limits.maxTerm)
            vote.candidateStamp = min(vote.candidateStamp, ceiling)
            message.payload = .vote(vote)
        default:
            break
        }
        return message
    }

    /// The payload with one element fewer in its list field; nil when it has none.
    static func shrink(_ payload: Payload) -> Payload? {
        switch payload {
        case .ping(var ping), .ack(var ping):
            guard !ping.piggyback.isEmpty else { return nil }
            ping.piggyback.removeLast()
            if case .ping = payload { return .ping(ping) } else { return .ack(ping) }
        case .change(var entries):
            guard entries.count > 1 else { return nil }
            entries.removeLast()
            return .change(entries)
        case .members(var page):
            guard !page.entries.isEmpty else { return nil }
            page.entries.removeLast()
            return .members(page)
        case .helloReply(var reply):
            guard !reply.members.isEmpty else { return nil }
            reply.members.removeLast()
            return .helloReply(reply)
        case .page(var page):
            guard !page.entries.isEmpty else { return nil }
            page.entries.removeLast()
            return .page(page)
        case .controlRequest(var request):
            guard !request.args.isEmpty else { return nil }
            request.args.removeLast()
            return .controlRequest(request)
        case .controlReply(var reply):
            guard !reply.body.isEmpty else { return nil }
            reply.body.removeLast(min(64, reply.body.count))
            return .controlReply(reply)
        default:
            return nil
        }
    }
}
