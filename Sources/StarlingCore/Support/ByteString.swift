/// A string that compares, hashes and sorts by its UTF-8 bytes.
///
/// Ids, names, topics and clusters are byte strings on the wire (Protocol.md §2.2). Swift's
/// `String ==` is Unicode-canonical: "café" in NFC and in NFD are equal strings but different
/// bytes, and a peer that keeps bytes (as the spec says) would then never agree with us. Every
/// table keyed by such a value uses this type instead.
public struct ByteString: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let string: String

    public init(_ string: String) {
        self.string = string
    }

    public init(stringLiteral value: String) {
        self.string = value
    }

    public var description: String { string }

    public static func == (lhs: ByteString, rhs: ByteString) -> Bool {
        bytesEqual(lhs.string, rhs.string)
    }

    public func hash(into hasher: inout Hasher) {
        var copy = string
        copy.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        // A terminator, so that adjacent fields of a composite key cannot run into each other.
        hasher.combine(0xFF as UInt8)
    }

    /// UTF-8 byte order (Protocol.md §3.2).
    public static func < (lhs: ByteString, rhs: ByteString) -> Bool {
        bytesPrecede(lhs.string, rhs.string)
    }
}

/// UTF-8 byte order, compared over contiguous bytes: the generic `lexicographicallyPrecedes`
/// is an order of magnitude slower on 50,000 ids.
@inlinable
public func bytesPrecede(_ a: String, _ b: String) -> Bool {
    var a = a
    var b = b
    return a.withUTF8 { x in
        b.withUTF8 { y in
            let common = min(x.count, y.count)
            var index = 0
            while index < common {
                if x[index] != y[index] { return x[index] < y[index] }
                index += 1
            }
            return x.count < y.count
        }
    }
}

/// Byte equality of two strings (never Unicode-canonical): lengths first, then the contiguous
/// bytes. The generic `utf8.elementsEqual` cost ~600 instructions a name (copies included), on
/// every member a peer adds to its view.
@inlinable
public func bytesEqual(_ a: String, _ b: String) -> Bool {
    guard a.utf8.count == b.utf8.count else { return false }
    var a = a
    var b = b
    return a.withUTF8 { x in
        b.withUTF8 { y in
            var index = 0
            while index < x.count {
                if x[index] != y[index] { return false }
                index += 1
            }
            return true
        }
    }
}
