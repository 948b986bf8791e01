/// Encodes and decodes datagrams (Protocol.md §2–§3, §5).
///
/// Decoding either returns a whole message or throws a ``WireError``: it never traps, never reads
/// out of bounds and never accepts trailing bytes. With `keys`, every datagram must carry a valid
/// HMAC-SHA256 trailer made with one of them; the first key signs.
public struct Codec: Sendable {
    public let keys: [AuthKey]

    public init(keys: [AuthKey] = []) {
        self.keys = keys
    }

    // MARK: Encoding

    /// Encodes `message`. Throws when a field is out of its bounds or the datagram would exceed
    /// ``Limits/maxDatagram``. The authenticated flag is set here, never by the caller.
    public func encode(_ message: Message) throws(WireError) -> [UInt8] {
        let header = message.header
        try check(header.cluster, "cluster", Limits.clusterBytes)
        try check(header.name, "name", Limits.nameBytes)
        var writer = ByteWriter(capacity: 256)
        writer.raw(Limits.magic)
        writer.u8(Limits.version)
        writer.u8(message.payload.type.rawValue)
        let flags = keys.isEmpty ? header.flags & ~Limits.flagAuthenticated : header.flags | Limits.flagAuthenticated
        writer.u16(flags)
        writer.u64(header.sequence)
        writer.u64(header.stamp)
        writer.nodeID(header.sender)
        writer.u32(header.incarnation)
        writer.u16(header.replyPort)
        writer.u8(UInt8(header.cluster.utf8.count))
        writer.u8(UInt8(header.name.utf8.count))
        writer.raw(header.cluster.utf8)
        writer.raw(header.name.utf8)
        let lengthAt = writer.bytes.count
        writer.u16(0)
        try PayloadCodec.encode(message.payload, into: &writer)
        let payloadLength = writer.bytes.count - lengthAt - 2
        let total = writer.bytes.count + (keys.isEmpty ? 0 : Limits.tagLength)
        guard total <= Limits.maxDatagram else { throw .oversized(length: total) }
        writer.patch16(at: lengthAt, UInt16(payloadLength))
        if let key = keys.first {
            writer.raw(key.tag(writer.bytes))
        }
        return writer.bytes
    }

    private func check(_ text: String, _ field: String, _ bounds: ClosedRange<Int>) throws(WireError) {
        let length = text.utf8.count
        guard bounds.contains(length) else { throw .badLength(field: field, length: length) }
    }

    // MARK: Decoding

    /// Decodes one datagram, checking in the order Protocol.md §5.1 states.
    public func decode(_ datagram: [UInt8]) throws(WireError) -> Message {
        do {
            return try datagram.withUnsafeBytes { raw throws(WireError) in try decode(raw) }
        } catch let error as WireError {
            throw error
        } catch {
            preconditionFailure("decode threw a non-wire error: \(error)")
        }
    }

    /// Decodes one datagram from raw memory (the receive buffer), without copying it first.
    public func decode(_ raw: UnsafeRawBufferPointer) throws(WireError) -> Message {
        guard raw.count <= Limits.maxDatagram else { throw .oversized(length: raw.count) }
        var reader = ByteReader(raw)
        for byte in Limits.magic where try reader.u8("magic") != byte { throw .badMagic }
        let version = try reader.u8("version")
        guard version == Limits.version else { throw .unsupportedVersion(version) }
        let typeCode = try reader.u8("type")
        let flags = try reader.u16("flags")
        let sequence = try reader.u64("sequence")
        let stamp = try reader.u64("stamp")
        let sender = try reader.nodeID("sender")
        let incarnation = try reader.u32("incarnation")
        let replyPort = try reader.u16("reply_port")
        let clusterLength = Int(try reader.u8("cluster_len"))
        let nameLength = Int(try reader.u8("name_len"))
        let cluster = try reader.string(length: clusterLength, "cluster", bounds: Limits.clusterBytes)
        let name = try reader.string(length: nameLength, "name", bounds: Limits.nameBytes)
        let payloadLength = Int(try reader.u16("payload_len"))
        let payloadStart = reader.offset
        let bodyEnd = payloadStart + payloadLength
        let authenticated = flags & Limits.flagAuthenticated != 0
        let expected = bodyEnd + (authenticated ? Limits.tagLength : 0)
        if raw.count < bodyEnd { throw .truncated(field: "payload") }
        if raw.count < expected { throw .truncatedTag }
        if raw.count > expected { throw .trailingBytes(count: raw.count - expected) }
        if keys.isEmpty {
            if authenticated { throw .unexpectedTag }
        } else {
            guard authenticated else { throw .missingTag }
            let body = UnsafeRawBufferPointer(rebasing: raw[0..<bodyEnd])
            let tag = UnsafeRawBufferPointer(rebasing: raw[bodyEnd..<expected])
            guard keys.contains(where: { $0.verify(body, tag: tag) }) else { throw .badTag }
        }
        guard let type = MessageType(rawValue: typeCode) else { throw .unknownType(typeCode) }
        var payloadReader = ByteReader(UnsafeRawBufferPointer(rebasing: raw[0..<bodyEnd]), offset: payloadStart)
        let payload = try PayloadCodec.decode(type, from: &payloadReader)
        if payloadReader.remaining > 0 { throw .trailingBytes(count: payloadReader.remaining) }
        let header = Header(
            flags: flags, sequence: sequence, stamp: stamp, sender: sender, incarnation: incarnation,
            replyPort: replyPort, cluster: cluster, name: name)
        return Message(header: header, payload: payload)
    }
}
