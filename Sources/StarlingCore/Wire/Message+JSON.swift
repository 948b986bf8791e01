/// Messages as JSON: the decoded fields of the test vectors (Tests/StarlingCoreTests/Vectors)
/// and of the conformance suite's reports. Field names are the ones Protocol.md uses.
extension Message {
    public var fields: JSON {
        let h = header
        let headerJSON = JSON.object([
            ("type", .string(payload.type.name)), ("flags", .int(h.flags)), ("sequence", .int(h.sequence)),
            ("stamp", .int(h.stamp)), ("sender", .string(h.sender.description)), ("incarnation", .int(h.incarnation)),
            ("reply_port", .int(h.replyPort)), ("cluster", .string(h.cluster)), ("name", .string(h.name)),
        ])
        guard !extensions.isEmpty else { return .object([("header", headerJSON), ("payload", payload.fields)]) }
        let area = extensions.map { JSON.object([("type", .int($0.type)), ("value", .string(Hex.encode($0.value)))]) }
        return .object([("header", headerJSON), ("payload", payload.fields), ("extensions", .array(area))])
    }
}

extension Payload {
    public var fields: JSON {
        switch self {
        case .announce(let announcement):
            return .object([("versions", announcement.versions.fields), ("member_count", .int(announcement.memberCount)),
                ("revoked", announcement.revoked.fields)])
        case .ping(let ping), .ack(let ping):
            return .object([("probe_id", .int(ping.probeID)), ("target", .string(ping.target.description)),
                ("revoked", ping.revoked.fields), ("piggyback", .array(ping.piggyback.map(\.fields)))])
        case .goodbye:
            return .object([])
        case .change(let entries):
            return .object([("entries", .array(entries.map(\.fields)))])
        case .userEvent(let event):
            return .object([("request_id", .int(event.requestID)), ("sequence", .int(event.sequence)), ("stamp", .int(event.stamp)),
                ("name", .string(event.name)), ("payload", .string(event.payload))])
        case .pingRequest(let probe), .nack(let probe):
            return .object([("probe_id", .int(probe.probeID)), ("target", .string(probe.target.description))])
        case .members(let page):
            return .object([("reply_wanted", .bool(page.replyWanted)), ("page", .int(page.page)), ("page_count", .int(page.pageCount)),
                ("entries", .array(page.entries.map(\.fields)))])
        case .hello(let hello):
            return .object([("versions", hello.versions.fields), ("request_id", .int(hello.requestID)), ("revoked", hello.revoked.fields)])
        case .helloReply(let reply):
            return .object([("versions", reply.versions.fields), ("request_id", .int(reply.requestID)), ("member_count", .int(reply.memberCount)),
                ("revoked", reply.revoked.fields), ("members", .array(reply.members.map(\.fields)))])
        case .pageRequest(let request):
            return .object([("request_id", .int(request.requestID)), ("bucket_mask", .string(Hex.encode(request.bucketMask))),
                ("max_pages", .int(request.maxPages)), ("cursor", .string(request.cursor)), ("until", .string(request.until))])
        case .page(let page):
            return .object([("request_id", .int(page.requestID)), ("index", .int(page.index)), ("last", .bool(page.last)),
                ("entries", .array(page.entries.map { .object([("id", .string($0.id)), ("revoked_at_ms", .int($0.revokedAtMillis))]) }))])
        case .digestRequest(let requestID):
            return .object([("request_id", .int(requestID))])
        case .digestReply(let reply):
            return .object([("request_id", .int(reply.requestID)), ("buckets", .array(reply.buckets.map(\.fields)))])
        case .candidacy(let candidacy):
            return .object([("term", .int(candidacy.term)), ("topic", .string(candidacy.topic))])
        case .leader(let leader):
            return .object([("term", .int(leader.term)), ("leader", .string(leader.leader.description)),
                ("leader_stamp", .int(leader.leaderStamp)), ("topic", .string(leader.topic)), ("leader_name", .string(leader.leaderName))])
        case .vote(let vote):
            return .object([("term", .int(vote.term)), ("candidate", .string(vote.candidate.description)),
                ("candidate_stamp", .int(vote.candidateStamp)), ("topic", .string(vote.topic))])
        case .controlRequest(let request):
            return .object([("request_id", .int(request.requestID)), ("issued_ms", .int(request.issuedMillis)), ("command", .string(request.command)),
                ("target", .string(request.target)), ("args", .array(request.args.map { .string($0) }))])
        case .controlReply(let reply):
            return .object([("request_id", .int(reply.requestID)), ("status", .int(reply.status.rawValue)),
                ("member_count", .int(reply.memberCount)), ("page", .int(reply.page)), ("page_count", .int(reply.pageCount)),
                ("body", .string(String(decoding: reply.body, as: UTF8.self)))])
        }
    }
}

extension VersionRange {
    var fields: JSON { .object([("lowest", .int(lowest)), ("highest", .int(highest))]) }
}

extension SetDigest {
    var fields: JSON { .object([("count", .int(count)), ("hash", .string(Hex.encode(hash)))]) }
}

extension MemberEntry {
    var fields: JSON {
        .object([("id", .string(id.description)), ("incarnation", .int(incarnation)), ("status", .string(status.name)),
            ("family", .int(address.family)), ("address", .string(addressText)), ("port", .int(port)),
            ("name", .string(name))])
    }

    /// Dotted quad for IPv4; eight groups of four hex digits for IPv6 (no shortening: vectors
    /// compare text).
    var addressText: String {
        switch address {
        case .ipv4(let value): "\(value >> 24).\(value >> 16 & 0xFF).\(value >> 8 & 0xFF).\(value & 0xFF)"
        case .ipv6(let high, let low):
            [high, low].flatMap { word in stride(from: 48, through: 0, by: -16).map { Hex.encode(word >> UInt64($0) & 0xFFFF).suffix(4) } }
                .joined(separator: ":")
        }
    }
}
