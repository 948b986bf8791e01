/// A message and the tag received with it, for ``AuthKey/verify(lanes:)``.
struct TaggedBody {
    var body: UnsafeRawBufferPointer
    var tag: UnsafeRawBufferPointer
}

extension AuthKey {
    typealias Lanes = SIMD4<UInt32>
    /// How many tags ``verify(lanes:)`` checks at once: SSE2, the baseline of x86-64, has
    /// 128-bit registers.
    static let laneCount = 4

    /// Checks up to four tags at once, one message per SIMD lane, and returns a bit per item
    /// (bit i set: item i carries the right tag). The answers are those of ``verify(_:tag:)``;
    /// the cost per message is about half, which is what lets a receiver that drains its socket in
    /// batches keep up with a million authenticated heartbeats per second on one core.
    ///
    /// Messages may differ in length: a lane that has run out of blocks keeps its state while the
    /// others go on. The comparison is constant-time per lane.
    func verify(lanes items: UnsafeBufferPointer<TaggedBody>) -> UInt8 {
        precondition((1...Self.laneCount).contains(items.count), "one to four lanes")
        // Unused lanes repeat the first item; their answers are masked off below.
        @inline(__always) func item(_ lane: Int) -> TaggedBody { items[lane < items.count ? lane : 0] }
        // Inner hash: the key block is already in `inner`; each message adds its padded blocks.
        @inline(__always) func blocks(_ lane: Int) -> UInt32 { UInt32(Self.paddedBlockCount(item(lane).body.count)) }
        let blockCounts = Lanes(blocks(0), blocks(1), blocks(2), blocks(3))
        var state = Self.broadcast(inner.words)
        let rounds = Int(blockCounts.max())
        withUnsafeTemporaryAllocation(byteCount: Self.laneCount * 64, alignment: 16) { scratch in
            let base = scratch.baseAddress!
            for index in 0..<rounds {
                for lane in 0..<Self.laneCount {
                    Self.paddedBlock(index, of: item(lane).body, into: base + lane * 64)
                }
                var next = state
                SHA256Rounds.compress(&next, SHA256Rounds.block { t in
                    Lanes(base.load(fromByteOffset: t * 4, as: UInt32.self).bigEndian,
                          base.load(fromByteOffset: 64 + t * 4, as: UInt32.self).bigEndian,
                          base.load(fromByteOffset: 128 + t * 4, as: UInt32.self).bigEndian,
                          base.load(fromByteOffset: 192 + t * 4, as: UInt32.self).bigEndian)
                })
                let active = blockCounts .> Lanes(repeating: UInt32(index))
                state = Self.select(next, state, where: active)
            }
        }
        // Outer hash: one block holding the inner digest, padded for 64 + 32 bytes in all.
        let inner = state
        var outer = Self.broadcast(self.outer.words)
        let zero = Lanes(repeating: 0)
        SHA256Rounds.compress(&outer, (
            inner.0, inner.1, inner.2, inner.3, inner.4, inner.5, inner.6, inner.7,
            Lanes(repeating: 0x8000_0000), zero, zero, zero, zero, zero, zero, Lanes(repeating: (64 + 32) * 8)))
        // Constant-time: every word of every lane is compared, the differences are ORed.
        @inline(__always) func tagWord(_ t: Int) -> Lanes {
            @inline(__always) func load(_ lane: Int) -> UInt32 {
                let tag = item(lane).tag
                return tag.count == Limits.tagLength ? tag.loadUnaligned(fromByteOffset: t * 4, as: UInt32.self).bigEndian : 0
            }
            return Lanes(load(0), load(1), load(2), load(3))
        }
        var difference: Lanes = outer.0 ^ tagWord(0)
        difference |= outer.1 ^ tagWord(1)
        difference |= outer.2 ^ tagWord(2)
        difference |= outer.3 ^ tagWord(3)
        difference |= outer.4 ^ tagWord(4)
        difference |= outer.5 ^ tagWord(5)
        difference |= outer.6 ^ tagWord(6)
        difference |= outer.7 ^ tagWord(7)
        var valid: UInt8 = 0
        for lane in 0..<items.count where difference[lane] == 0 && item(lane).tag.count == Limits.tagLength {
            valid |= 1 << lane
        }
        return valid
    }

    /// Block `index` of `message` as SHA-256 pads it after the 64-byte key block: the message
    /// bytes, 0x80, zeros, and the total length in bits in the last eight bytes of the last block.
    private static func paddedBlock(_ index: Int, of message: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer) {
        let start = index * 64
        let taken = max(0, min(64, message.count - start))
        if taken > 0 { out.copyMemory(from: message.baseAddress! + start, byteCount: taken) }
        if taken < 64 { (out + taken).initializeMemory(as: UInt8.self, repeating: 0, count: 64 - taken) }
        if message.count >= start, message.count < start + 64 { out.storeBytes(of: 0x80, toByteOffset: message.count - start, as: UInt8.self) }
        if index == paddedBlockCount(message.count) - 1 { out.storeBytes(of: (UInt64(64 + message.count) * 8).bigEndian, toByteOffset: 56, as: UInt64.self) }
    }

    /// Blocks a message of `length` bytes fills once padded: 0x80 and the 8-byte length follow it.
    private static func paddedBlockCount(_ length: Int) -> Int { (length + 9 + 63) / 64 }

    private static func broadcast(_ words: SHA256Rounds.State<UInt32>) -> SHA256Rounds.State<Lanes> {
        (Lanes(repeating: words.0), Lanes(repeating: words.1), Lanes(repeating: words.2), Lanes(repeating: words.3),
         Lanes(repeating: words.4), Lanes(repeating: words.5), Lanes(repeating: words.6), Lanes(repeating: words.7))
    }

    private static func select(
        _ new: SHA256Rounds.State<Lanes>, _ old: SHA256Rounds.State<Lanes>, where mask: SIMDMask<SIMD4<Int32>>
    ) -> SHA256Rounds.State<Lanes> {
        (old.0.replacing(with: new.0, where: mask), old.1.replacing(with: new.1, where: mask),
         old.2.replacing(with: new.2, where: mask), old.3.replacing(with: new.3, where: mask),
         old.4.replacing(with: new.4, where: mask), old.5.replacing(with: new.5, where: mask),
         old.6.replacing(with: new.6, where: mask), old.7.replacing(with: new.7, where: mask))
    }
}
