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
        guard header.stamp <= LamportClock.max else { throw .invalidValue(field: "stamp") }
        var writer = ByteWriter(capacity: 256)
        writer.raw(Limits.magic)
        writer.u8(Limits.version)
        writer.u8(message.payload.type.rawValue)
        var flags = keys.isEmpty ? header.flags & ~Limits.flagAuthenticated : header.flags | Limits.flagAuthenticated
        flags = message.extensions.isEmpty ? flags & ~Limits.flagExtensions : flags | Limits.flagExtensions
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
        try Self.encode(message.extensions, payload: message.payload, into: &writer)
        let total = writer.bytes.count + (keys.isEmpty ? 0 : Limits.tagLength)
        guard total <= Limits.maxDatagram else { throw .oversized(length: total) }
        writer.patch16(at: lengthAt, UInt16(payloadLength))
        if let key = keys.first {
            writer.raw(key.tag(writer.bytes))
        }
        return writer.bytes
    }

    /// Writes the extension area: `ext_len u16`, then `type u8, len u8, value` per entry.
    private static func encode(_ extensions: [Extension], payload: Payload, into writer: inout ByteWriter) throws(WireError) {
        guard !extensions.isEmpty else { return }
        var seen: Set<UInt8> = []
        var length = 0
        var previous: UInt8?
        for entry in extensions {
            guard seen.insert(entry.type).inserted || Self.repeats(entry.type, after: previous) else { throw .invalidValue(field: "extension") }
            previous = entry.type
            guard Limits.extensionValueBytes.contains(entry.value.count) else {
                throw .badLength(field: "extension", length: entry.value.count)
            }
            length += 2 + entry.value.count
        }
        guard length <= Int(UInt16.max) else { throw .oversized(length: length) }
        try checkKnown(extensions, payload: payload)
        writer.u16(UInt16(length))
        for entry in extensions {
            writer.u8(entry.type)
            writer.u8(UInt8(entry.value.count))
            writer.raw(entry.value)
        }
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
        let frame = try frame(raw)
        if frame.authenticated {
            guard keys.contains(where: { $0.verify(frame.body(raw), tag: frame.tag(raw)) }) else { throw .badTag }
        }
        return try finish(frame, raw)
    }

    /// Decodes several datagrams, with the same answer for each as ``decode(_:)-(UnsafeRawBufferPointer)``.
    /// Tags are checked four at a time, one message per SIMD lane, so a receiver that drains
    /// its socket in batches spends about half as much per authenticated datagram.
    public func decode(batch datagrams: [UnsafeRawBufferPointer]) -> [Result<Message, WireError>] {
        var frames = datagrams.map { raw in Result { () throws(WireError) in try frame(raw) } }
        if let key = keys.first {
            // The datagrams whose framing is sound, by position in the batch.
            var pending: [Int] = []
            var items: [TaggedBody] = []
            for (index, frame) in frames.enumerated() {
                guard case .success(let frame) = frame else { continue }
                pending.append(index)
                items.append(TaggedBody(body: frame.body(datagrams[index]), tag: frame.tag(datagrams[index])))
            }
            var valid = [Bool](repeating: false, count: pending.count)
            items.withUnsafeBufferPointer { items in
                for start in stride(from: 0, to: items.count, by: AuthKey.laneCount) {
                    let lanes = UnsafeBufferPointer(rebasing: items[start..<min(start + AuthKey.laneCount, items.count)])
                    if lanes.count == 1 {
                        valid[start] = key.verify(lanes[0].body, tag: lanes[0].tag)
                        continue
                    }
                    let bits = key.verify(lanes: lanes)
                    for lane in 0..<lanes.count { valid[start + lane] = bits & (1 << lane) != 0 }
                }
            }
            // Other keys are only there during a rotation: checked one by one, as decode(_:) does.
            for (position, index) in pending.enumerated() where !valid[position] {
                let item = items[position]
                if !keys.dropFirst().contains(where: { $0.verify(item.body, tag: item.tag) }) { frames[index] = .failure(.badTag) }
            }
        }
        return zip(frames, datagrams).map { frame, raw in
            frame.flatMap { frame in Result { () throws(WireError) in try finish(frame, raw) } }
        }
    }

    /// Runs `body` with `datagrams` laid out one after another in one buffer, as a receive
    /// batch is; for callers of ``decode(batch:)`` that hold arrays (tests, simulator, bench).
    public static func withBuffers<R>(_ datagrams: [[UInt8]], _ body: ([UnsafeRawBufferPointer]) throws -> R) rethrows -> R {
        try datagrams.flatMap { $0 }.withUnsafeBytes { all in
            var offset = 0
            let buffers = datagrams.map { bytes in
                defer { offset += bytes.count }
                return UnsafeRawBufferPointer(rebasing: all[offset..<(offset + bytes.count)])
            }
            return try body(buffers)
        }
    }

    /// The Lamport stamp in a datagram's header (Protocol.md §2.2), read without checking or
    /// decoding the rest (the simulator's clock check); nil when the datagram is too short.
    public static func stamp(ofDatagram bytes: [UInt8]) -> UInt64? {
        bytes.withUnsafeBytes { raw -> UInt64? in
            var reader = ByteReader(raw)
            do throws(WireError) {
                for _ in Limits.magic { _ = try reader.u8("magic") }
                _ = try reader.u8("version")
                _ = try reader.u8("type")
                _ = try reader.u16("flags")
                _ = try reader.u64("sequence")
                return try reader.u64("stamp")
            } catch {
                return nil
            }
        }
    }

    /// The sender's name in a datagram of another version, read where version 1 and 2 put it
    /// (the header's layout did not change), so that the log can say who still speaks it; nil
    /// when the bytes do not hold a name.
    public static func senderName(ofDatagram raw: UnsafeRawBufferPointer) -> String? {
        guard raw.count >= Limits.fixedHeader else { return nil }
        let clusterLength = Int(raw[Limits.fixedHeader - 2])
        let nameLength = Int(raw[Limits.fixedHeader - 1])
        let start = Limits.fixedHeader + clusterLength
        guard Limits.nameBytes.contains(nameLength), raw.count >= start + nameLength else { return nil }
        return String(validating: UnsafeRawBufferPointer(rebasing: raw[start..<(start + nameLength)]), as: UTF8.self)
    }

    /// What the fixed header says, checked in the order of Protocol.md §5.1 up to the tag.
    struct Frame {
        var header: Header
        var typeCode: UInt8
        var payloadStart: Int
        var payloadEnd: Int
        var bodyEnd: Int
        var authenticated: Bool

        func body(_ raw: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: raw[0..<bodyEnd]) }
        func tag(_ raw: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: raw[bodyEnd...]) }
    }

    private func frame(_ raw: UnsafeRawBufferPointer) throws(WireError) -> Frame {
        guard raw.count <= Limits.maxDatagram else { throw .oversized(length: raw.count) }
        // Under four bytes there is no magic to judge: `truncated`, whatever the bytes (§5.1).
        guard raw.count >= Limits.magic.count else { throw .truncated(field: "magic") }
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
        // Both lengths are judged before either string's bytes (Protocol.md §5.1, checks 5–6).
        guard Limits.clusterBytes.contains(clusterLength) else { throw .badLength(field: "cluster", length: clusterLength) }
        guard Limits.nameBytes.contains(nameLength) else { throw .badLength(field: "name", length: nameLength) }
        // The whole header and payload_len are present before any UTF-8 is judged.
        guard reader.remaining >= clusterLength + nameLength + 2 else { throw .truncated(field: "header") }
        let cluster = try reader.string(length: clusterLength, "cluster", bounds: Limits.clusterBytes)
        let name = try reader.string(length: nameLength, "name", bounds: Limits.nameBytes)
        let payloadLength = Int(try reader.u16("payload_len"))
        let payloadStart = reader.offset
        let payloadEnd = payloadStart + payloadLength
        if raw.count < payloadEnd { throw .truncated(field: "payload") }
        // The extension area's length follows the payload (Protocol.md §3.4).
        var bodyEnd = payloadEnd
        if flags & Limits.flagExtensions != 0 {
            var extensionReader = ByteReader(raw, offset: payloadEnd)
            bodyEnd = payloadEnd + 2 + Int(try extensionReader.u16("ext_len"))
        }
        let authenticated = flags & Limits.flagAuthenticated != 0
        let expected = bodyEnd + (authenticated ? Limits.tagLength : 0)
        if raw.count < bodyEnd { throw .truncated(field: "extension") }
        if raw.count < expected { throw .truncatedTag }
        if raw.count > expected { throw .trailingBytes(count: raw.count - expected) }
        if keys.isEmpty, authenticated { throw .unexpectedTag }
        if !keys.isEmpty, !authenticated { throw .missingTag }
        let header = Header(
            flags: flags, sequence: sequence, stamp: stamp, sender: sender, incarnation: incarnation,
            replyPort: replyPort, cluster: cluster, name: name)
        return Frame(header: header, typeCode: typeCode, payloadStart: payloadStart, payloadEnd: payloadEnd, bodyEnd: bodyEnd,
            authenticated: authenticated)
    }

    /// The checks after the tag: message type, payload, nothing left over.
    private func finish(_ frame: Frame, _ raw: UnsafeRawBufferPointer) throws(WireError) -> Message {
        guard let type = MessageType(rawValue: frame.typeCode) else { throw .unknownType(frame.typeCode) }
        // A stamp above the clock's ceiling could only wrap or freeze every clock (§4.2).
        guard frame.header.stamp <= LamportClock.max else { throw .invalidValue(field: "stamp") }
        var payloadReader = ByteReader(UnsafeRawBufferPointer(rebasing: raw[0..<frame.payloadEnd]), offset: frame.payloadStart)
        let payload = try PayloadCodec.decode(type, from: &payloadReader)
        if payloadReader.remaining > 0 { throw .trailingBytes(count: payloadReader.remaining) }
        let extensions = try decodeExtensions(frame, raw)
        try Self.checkKnown(extensions, payload: payload)
        return Message(header: frame.header, payload: payload, extensions: extensions)
    }

    /// The extension area's entries: each within `ext_len`, no type twice (but tags), `ext_len` not 0.
    private func decodeExtensions(_ frame: Frame, _ raw: UnsafeRawBufferPointer) throws(WireError) -> [Extension] {
        guard frame.header.flags & Limits.flagExtensions != 0 else { return [] }
        var reader = ByteReader(frame.body(raw), offset: frame.payloadEnd + 2)
        guard reader.remaining > 0 else { throw .invalidValue(field: "ext_len") }
        var extensions: [Extension] = []
        var seen: Set<UInt8> = []
        while reader.remaining > 0 {
            let type = try reader.u8("extension_type")
            let length = Int(try reader.u8("extension_len"))
            let value = try reader.raw(length, "extension")
            guard seen.insert(type).inserted || Self.repeats(type, after: extensions.last?.type) else { throw .invalidValue(field: "extension") }
            extensions.append(Extension(type: type, value: value))
        }
        return extensions
    }

    /// Known types are judged with the payload, so that a bad one drops the datagram (§3.4):
    /// a MEMBERS page's listed tags name entries of that page.
    private static func checkKnown(_ extensions: [Extension], payload: Payload) throws(WireError) {
        guard !extensions.isEmpty else { return }
        _ = try MemberTags.decode(extensions)
        _ = try ListedTags.decode(extensions, entryCount: payload.listedEntryCount)
        _ = try Message.carriedRequestID(in: extensions)
    }

    /// Whether a type may appear again right after `previous`: only the tags entries repeat,
    /// in consecutive entries (§3.4.1).
    private static func repeats(_ type: UInt8, after previous: UInt8?) -> Bool {
        (type == Limits.tagsExtension || type == Limits.listedTagsExtension) && previous == type
    }
}
