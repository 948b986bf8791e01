/// Payload layouts of every message type (Protocol.md §3). Decoders read exactly the fields
/// the spec defines; the caller rejects anything left over.
enum PayloadCodec {
    static func encode(_ payload: Payload, into writer: inout ByteWriter) throws(WireError) {
        switch payload {
        case .announce(let announcement):
            try versions(announcement.versions, into: &writer)
            writer.u16(announcement.memberCount)
            digest(announcement.revoked, into: &writer)
        case .ping(let ping), .ack(let ping):
            writer.u32(ping.probeID)
            writer.nodeID(ping.target)
            digest(ping.revoked, into: &writer)
            try entries(ping.piggyback, into: &writer)
        case .goodbye:
            break
        case .pingRequest(let probe), .nack(let probe):
            writer.u32(probe.probeID)
            writer.nodeID(probe.target)
        case .change(let entries):
            guard !entries.isEmpty else { throw .invalidValue(field: "entry_count") }
            try self.entries(entries, into: &writer)
        case .userEvent(let event):
            guard event.sequence > 0 else { throw .invalidValue(field: "event_sequence") }
            guard event.stamp <= LamportClock.max else { throw .invalidValue(field: "event_stamp") }
            guard UserEvent.isValidName(event.name) else { throw .badLength(field: "event_name", length: event.name.utf8.count) }
            guard Limits.userEventPayloadBytes.contains(event.payload.utf8.count) else {
                throw .badLength(field: "event_payload", length: event.payload.utf8.count)
            }
            writer.u32(event.requestID)
            writer.u32(event.sequence)
            writer.u64(event.stamp)
            writer.string8(event.name)
            writer.string16(event.payload)
        case .members(let page):
            writer.u8(page.replyWanted ? 1 : 0)
            writer.u8(page.page)
            writer.u8(page.pageCount)
            try entries(page.entries, into: &writer)
        case .hello(let hello):
            try versions(hello.versions, into: &writer)
            writer.u32(hello.requestID)
            digest(hello.revoked, into: &writer)
        case .helloReply(let reply):
            try versions(reply.versions, into: &writer)
            writer.u32(reply.requestID)
            writer.u16(reply.memberCount)
            digest(reply.revoked, into: &writer)
            try entries(reply.members, into: &writer)
        case .pageRequest(let request):
            writer.u32(request.requestID)
            writer.u64(request.bucketMask)
            writer.u8(request.maxPages)
            try string8(request.cursor, "cursor", 0...Limits.revokedIDBytes.upperBound, into: &writer)
            try string8(request.until, "until", 0...Limits.revokedIDBytes.upperBound, into: &writer)
        case .page(let page):
            writer.u32(page.requestID)
            writer.u8(page.index)
            writer.u8(page.last ? 1 : 0)
            guard page.entries.count <= Int(UInt16.max) else { throw .badLength(field: "entries", length: page.entries.count) }
            writer.u16(UInt16(page.entries.count))
            for entry in page.entries {
                try string8(entry.id, "revoked_id", Limits.revokedIDBytes, into: &writer)
                writer.u64(entry.revokedAtMillis)
            }
        case .digestRequest(let requestID):
            writer.u32(requestID)
        case .digestReply(let reply):
            guard reply.buckets.count == Limits.digestBuckets else {
                throw .badLength(field: "buckets", length: reply.buckets.count)
            }
            writer.u32(reply.requestID)
            for bucket in reply.buckets { digest(bucket, into: &writer) }
        case .candidacy(let candidacy):
            guard candidacy.term <= Limits.maxTerm else { throw .invalidValue(field: "term") }
            writer.u64(candidacy.term)
            try string8(candidacy.topic, "topic", Limits.topicBytes, into: &writer)
        case .leader(let leader):
            guard leader.term <= Limits.maxTerm, leader.leaderStamp <= LamportClock.max else { throw .invalidValue(field: "term") }
            writer.u64(leader.term)
            writer.nodeID(leader.leader)
            writer.u64(leader.leaderStamp)
            try string8(leader.topic, "topic", Limits.topicBytes, into: &writer)
            try string8(leader.leaderName, "leader_name", Limits.nameBytes, into: &writer)
        case .vote(let vote):
            guard vote.term <= Limits.maxTerm, vote.candidateStamp <= LamportClock.max else { throw .invalidValue(field: "term") }
            writer.u64(vote.term)
            writer.nodeID(vote.candidate)
            writer.u64(vote.candidateStamp)
            try string8(vote.topic, "topic", Limits.topicBytes, into: &writer)
        case .controlRequest(let request):
            writer.u32(request.requestID)
            writer.u64(request.issuedMillis)
            try string8(request.command, "command", Limits.commandBytes, into: &writer)
            try string8(request.target, "target", Limits.targetBytes, into: &writer)
            guard request.args.count <= Limits.maxArgs else { throw .badLength(field: "args", length: request.args.count) }
            writer.u8(UInt8(request.args.count))
            for arg in request.args {
                let length = arg.utf8.count
                guard Limits.argBytes.contains(length) else { throw .badLength(field: "arg", length: length) }
                writer.string16(arg)
            }
        case .controlReply(let reply):
            writer.u32(reply.requestID)
            writer.u8(reply.status.rawValue)
            writer.u16(reply.memberCount)
            writer.u16(reply.page)
            writer.u16(reply.pageCount)
            guard reply.body.count <= Limits.maxDatagram else { throw .badLength(field: "body", length: reply.body.count) }
            writer.u16(UInt16(reply.body.count))
            writer.raw(reply.body)
        }
    }

    static func decode(_ type: MessageType, from reader: inout ByteReader) throws(WireError) -> Payload {
        switch type {
        case .announce:
            let spoken = try versions(&reader)
            return .announce(Announcement(versions: spoken, memberCount: try reader.u16("member_count"), revoked: try digest(&reader)))
        case .goodbye: return .goodbye
        case .ping: return .ping(try ping(&reader))
        case .ack: return .ack(try ping(&reader))
        case .pingRequest: return .pingRequest(try probe(&reader))
        case .nack: return .nack(try probe(&reader))
        case .change:
            let list = try entries(&reader)
            guard !list.isEmpty else { throw .invalidValue(field: "entry_count") }
            return .change(list)
        case .userEvent:
            let requestID = try reader.u32("request_id")
            let sequence = try reader.u32("event_sequence")
            guard sequence > 0 else { throw .invalidValue(field: "event_sequence") }
            let stamp = try stamp(&reader, "event_stamp")
            let name = try reader.string8("event_name", bounds: Limits.userEventNameBytes)
            // Controls and commas are refused after the UTF-8 check, as a value outside its set.
            guard UserEvent.isValidName(name) else { throw .invalidValue(field: "event_name") }
            let payload = try reader.string16("event_payload", bounds: Limits.userEventPayloadBytes)
            return .userEvent(UserEvent(requestID: requestID, sequence: sequence, stamp: stamp, name: name, payload: payload))
        case .members:
            let flags = try reader.u8("reply_wanted")
            guard flags <= 1 else { throw .invalidValue(field: "reply_wanted") }
            let page = try reader.u8("page")
            let count = try reader.u8("page_count")
            guard page < count else { throw .invalidValue(field: "page") }
            return .members(MembersPage(replyWanted: flags == 1, page: page, pageCount: count, entries: try entries(&reader)))
        case .hello:
            let spoken = try versions(&reader)
            return .hello(Hello(versions: spoken, requestID: try reader.u32("request_id"), revoked: try digest(&reader)))
        case .helloReply:
            let spoken = try versions(&reader)
            let requestID = try reader.u32("request_id")
            let memberCount = try reader.u16("member_count")
            let revoked = try digest(&reader)
            return .helloReply(HelloReply(versions: spoken, requestID: requestID, memberCount: memberCount, revoked: revoked, members: try entries(&reader)))
        case .pageRequest:
            let requestID = try reader.u32("request_id")
            let mask = try reader.u64("bucket_mask")
            let maxPages = try reader.u8("max_pages")
            guard maxPages > 0 else { throw .invalidValue(field: "max_pages") }
            let cursor = try reader.string8("cursor", bounds: 0...Limits.revokedIDBytes.upperBound)
            let until = try reader.string8("until", bounds: 0...Limits.revokedIDBytes.upperBound)
            return .pageRequest(PageRequest(requestID: requestID, bucketMask: mask, maxPages: maxPages, cursor: cursor, until: until))
        case .page:
            let requestID = try reader.u32("request_id")
            let index = try reader.u8("index")
            let last = try reader.u8("last")
            guard last <= 1 else { throw .invalidValue(field: "last") }
            let count = Int(try reader.u16("entry_count"))
            // Each entry takes at least 9 bytes (an empty id is then refused as `bad_length`):
            // refuse counts the datagram cannot hold before reserving anything.
            guard count * 9 <= reader.remaining else { throw .truncated(field: "entries") }
            var list: [RevokedEntry] = []
            list.reserveCapacity(count)
            for _ in 0..<count {
                let id = try reader.string8("revoked_id", bounds: Limits.revokedIDBytes)
                list.append(RevokedEntry(id: id, revokedAtMillis: try reader.u64("revoked_at")))
            }
            return .page(RevokedPage(requestID: requestID, index: index, last: last == 1, entries: list))
        case .digestRequest:
            return .digestRequest(requestID: try reader.u32("request_id"))
        case .digestReply:
            let requestID = try reader.u32("request_id")
            var buckets: [SetDigest] = []
            buckets.reserveCapacity(Limits.digestBuckets)
            for _ in 0..<Limits.digestBuckets { buckets.append(try digest(&reader)) }
            return .digestReply(DigestReply(requestID: requestID, buckets: buckets))
        case .candidacy:
            let term = try term(&reader)
            return .candidacy(Candidacy(term: term, topic: try reader.string8("topic", bounds: Limits.topicBytes)))
        case .leader:
            let term = try term(&reader)
            let leader = try reader.nodeID("leader")
            let stamp = try stamp(&reader, "leader_stamp")
            let topic = try reader.string8("topic", bounds: Limits.topicBytes)
            let name = try reader.string8("leader_name", bounds: Limits.nameBytes)
            return .leader(LeaderAnnouncement(term: term, leader: leader, leaderStamp: stamp, topic: topic, leaderName: name))
        case .vote:
            let term = try term(&reader)
            let candidate = try reader.nodeID("candidate")
            let stamp = try stamp(&reader, "candidate_stamp")
            return .vote(Vote(term: term, candidate: candidate, candidateStamp: stamp, topic: try reader.string8("topic", bounds: Limits.topicBytes)))
        case .controlRequest:
            let requestID = try reader.u32("request_id")
            let issued = try reader.u64("issued_ms")
            let command = try reader.string8("command", bounds: Limits.commandBytes)
            let target = try reader.string8("target", bounds: Limits.targetBytes)
            let count = Int(truncatingIfNeeded: try reader.u8("arg_count"))
            guard count <= Limits.maxArgs else { throw .badLength(field: "args", length: count) }
            var args: [String] = []
            for _ in 0..<count { args.append(try reader.string16("arg", bounds: Limits.argBytes)) }
            return .controlRequest(ControlRequest(requestID: requestID, issuedMillis: issued, command: command, target: target, args: args))
        case .controlReply:
            let requestID = try reader.u32("request_id")
            let statusCode = try reader.u8("status")
            guard let status = ControlStatus(rawValue: statusCode) else { throw .invalidValue(field: "status") }
            let memberCount = try reader.u16("member_count")
            let page = try reader.u16("page")
            let pageCount = try reader.u16("page_count")
            guard page < pageCount else { throw .invalidValue(field: "page") }
            let length = Int(try reader.u16("body_len"))
            let body = try reader.raw(length, "body")
            return .controlReply(ControlReply(requestID: requestID, status: status, memberCount: memberCount, page: page, pageCount: pageCount, body: body))
        }
    }

    // MARK: Shared pieces

    private static func string8(
        _ text: String, _ field: String, _ bounds: ClosedRange<Int>, into writer: inout ByteWriter
    ) throws(WireError) {
        let length = text.utf8.count
        guard bounds.contains(length) else { throw .badLength(field: field, length: length) }
        writer.string8(text)
    }

    private static func digest(_ digest: SetDigest, into writer: inout ByteWriter) {
        writer.u32(digest.count)
        writer.u64(digest.hash)
    }

    private static func digest(_ reader: inout ByteReader) throws(WireError) -> SetDigest {
        SetDigest(count: try reader.u32("digest_count"), hash: try reader.u64("digest_hash"))
    }

    private static func entries(_ list: [MemberEntry], into writer: inout ByteWriter) throws(WireError) {
        guard list.count <= Int(UInt8.max) else { throw .badLength(field: "entries", length: list.count) }
        writer.u8(UInt8(list.count))
        for entry in list {
            // id 16, incarnation 4, status 1, family 1, address 4 or 16, port 2: at most 40.
            writer.batch(capacity: 40) { fields in
                fields.nodeID(entry.id)
                fields.u32(entry.incarnation)
                fields.u8(entry.status.rawValue)
                fields.u8(entry.address.family)
                switch entry.address {
                case .ipv4(let address): fields.u32(address)
                case .ipv6(let high, let low): fields.nodeID(NodeID(high: high, low: low))
                }
                fields.u16(entry.port)
            }
            try string8(entry.name, "member_name", Limits.nameBytes, into: &writer)
        }
    }

    private static func entries(_ reader: inout ByteReader) throws(WireError) -> [MemberEntry] {
        let count = Int(try reader.u8("entry_count"))
        var list: [MemberEntry] = []
        if count > 0 { list.reserveCapacity(count) }
        for _ in 0..<count {
            let id = try reader.nodeID("member_id")
            let incarnation = try reader.u32("member_incarnation")
            let statusCode = try reader.u8("member_status")
            guard let status = MemberStatus(rawValue: statusCode) else { throw .invalidValue(field: "member_status") }
            let address: EntryAddress
            switch try reader.u8("member_family") {
            case 4: address = .ipv4(try reader.u32("member_address"))
            case 6:
                let bytes = try reader.nodeID("member_address")
                address = .ipv6(high: bytes.high, low: bytes.low)
            default: throw .invalidValue(field: "member_family")
            }
            let port = try reader.u16("member_port")
            let name = try reader.string8("member_name", bounds: Limits.nameBytes)
            list.append(MemberEntry(id: id, incarnation: incarnation, status: status,
                address: address, port: port, name: name))
        }
        return list
    }

    /// `lowest u8`, `highest u8`; a range upside down or starting at 0 is `invalid_value`.
    private static func versions(_ reader: inout ByteReader) throws(WireError) -> VersionRange {
        let lowest = try reader.u8("lowest_version")
        let highest = try reader.u8("highest_version")
        guard lowest > 0, lowest <= highest else { throw .invalidValue(field: "versions") }
        return VersionRange(lowest: lowest, highest: highest)
    }

    private static func versions(_ range: VersionRange, into writer: inout ByteWriter) throws(WireError) {
        guard range.lowest > 0, range.lowest <= range.highest else { throw .invalidValue(field: "versions") }
        writer.u8(range.lowest)
        writer.u8(range.highest)
    }

    private static func ping(_ reader: inout ByteReader) throws(WireError) -> Ping {
        Ping(probeID: try reader.u32("probe_id"), target: try reader.nodeID("target"), revoked: try digest(&reader),
            piggyback: try entries(&reader))
    }

    /// Terms and stamps stay at or below 2^63 − 1 (Protocol.md §4.2, §6.4): a term at the top
    /// could never be followed by another election, a stamp at the top would freeze clocks.
    private static func term(_ reader: inout ByteReader) throws(WireError) -> UInt64 {
        let term = try reader.u64("term")
        guard term <= Limits.maxTerm else { throw .invalidValue(field: "term") }
        return term
    }

    private static func stamp(_ reader: inout ByteReader, _ field: StaticString) throws(WireError) -> UInt64 {
        let stamp = try reader.u64(field)
        guard stamp <= LamportClock.max else { throw .invalidValue(field: field.description) }
        return stamp
    }

    private static func probe(_ reader: inout ByteReader) throws(WireError) -> Probe {
        Probe(probeID: try reader.u32("probe_id"), target: try reader.nodeID("target"))
    }
}
