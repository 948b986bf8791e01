/// The operations SHA-256's compression needs, so that one implementation of the rounds serves a
/// single message (UInt32) and four messages at once (SIMD4<UInt32>, one per lane).
protocol SHA256Word {
    static func &+ (lhs: Self, rhs: Self) -> Self
    static func ^ (lhs: Self, rhs: Self) -> Self
    static func & (lhs: Self, rhs: Self) -> Self
    init(constant: UInt32)
    /// Σ0, Σ1, σ0, σ1 of FIPS 180-4 §4.1.2.
    var bigSigma0: Self { get }
    var bigSigma1: Self { get }
    var smallSigma0: Self { get }
    var smallSigma1: Self { get }
}

extension UInt32: SHA256Word {
    @inline(__always) init(constant: UInt32) { self = constant }
    @inline(__always) private func rotr(_ n: UInt32) -> UInt32 { (self >> n) | (self << (32 - n)) }
    // Flat: the three rotations run in parallel, which keeps the round's critical path short.
    @inline(__always) var bigSigma0: UInt32 { rotr(2) ^ rotr(13) ^ rotr(22) }
    @inline(__always) var bigSigma1: UInt32 { rotr(6) ^ rotr(11) ^ rotr(25) }
    @inline(__always) var smallSigma0: UInt32 { rotr(7) ^ rotr(18) ^ (self >> 3) }
    @inline(__always) var smallSigma1: UInt32 { rotr(17) ^ rotr(19) ^ (self >> 10) }
}

extension SIMD4: SHA256Word where Scalar == UInt32 {
    @inline(__always) init(constant: UInt32) { self.init(repeating: constant) }
    // SSE2 has no vector rotate. Each XOR pairs a right and a left shift whose amounts do not add
    // up to 32: LLVM then keeps every shift a single vector instruction (a rotate pattern is split
    // into scalars, and two right shifts of one value get shuffled by the SLP vectoriser).
    @inline(__always) var bigSigma0: Self {
        ((self &>> 2) ^ (self &<< 19)) ^ ((self &>> 13) ^ (self &<< 10)) ^ ((self &>> 22) ^ (self &<< 30))
    }
    @inline(__always) var bigSigma1: Self {
        ((self &>> 6) ^ (self &<< 21)) ^ ((self &>> 11) ^ (self &<< 7)) ^ ((self &>> 25) ^ (self &<< 26))
    }
    @inline(__always) var smallSigma0: Self {
        ((self &>> 7) ^ (self &<< 14)) ^ ((self &>> 18) ^ (self &<< 25)) ^ (self &>> 3)
    }
    @inline(__always) var smallSigma1: Self {
        ((self &>> 17) ^ (self &<< 13)) ^ ((self &>> 19) ^ (self &<< 15)) ^ (self &>> 10)
    }
}

enum SHA256Rounds {
    static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    typealias State<W> = (W, W, W, W, W, W, W, W)
    typealias Block<W> = (W, W, W, W, W, W, W, W, W, W, W, W, W, W, W, W)

    /// One round; the caller rotates the working variables by passing them shifted. Maj reuses
    /// the previous round's a ^ b (carried in `bc`).
    @inline(__always)
    static func round<W: SHA256Word>(
        _ a: W, _ b: W, _ c: W, _ d: inout W, _ e: W, _ f: W, _ g: W, _ h: inout W, _ kw: W, _ bc: inout W
    ) {
        let t1 = h &+ kw &+ e.bigSigma1 &+ (((f ^ g) & e) ^ g)
        let ab = a ^ b
        d = d &+ t1
        h = t1 &+ a.bigSigma0 &+ ((ab & bc) ^ b)
        bc = ab
    }

    /// Replaces w with the next 16 schedule words (FIPS 180-4 §6.2.2 step 1, in a 16-word window).
    @inline(__always)
    static func schedule<W: SHA256Word>(_ w: inout Block<W>) {
        w.0 = w.0 &+ w.1.smallSigma0 &+ w.9 &+ w.14.smallSigma1
        w.1 = w.1 &+ w.2.smallSigma0 &+ w.10 &+ w.15.smallSigma1
        w.2 = w.2 &+ w.3.smallSigma0 &+ w.11 &+ w.0.smallSigma1
        w.3 = w.3 &+ w.4.smallSigma0 &+ w.12 &+ w.1.smallSigma1
        w.4 = w.4 &+ w.5.smallSigma0 &+ w.13 &+ w.2.smallSigma1
        w.5 = w.5 &+ w.6.smallSigma0 &+ w.14 &+ w.3.smallSigma1
        w.6 = w.6 &+ w.7.smallSigma0 &+ w.15 &+ w.4.smallSigma1
        w.7 = w.7 &+ w.8.smallSigma0 &+ w.0 &+ w.5.smallSigma1
        w.8 = w.8 &+ w.9.smallSigma0 &+ w.1 &+ w.6.smallSigma1
        w.9 = w.9 &+ w.10.smallSigma0 &+ w.2 &+ w.7.smallSigma1
        w.10 = w.10 &+ w.11.smallSigma0 &+ w.3 &+ w.8.smallSigma1
        w.11 = w.11 &+ w.12.smallSigma0 &+ w.4 &+ w.9.smallSigma1
        w.12 = w.12 &+ w.13.smallSigma0 &+ w.5 &+ w.10.smallSigma1
        w.13 = w.13 &+ w.14.smallSigma0 &+ w.6 &+ w.11.smallSigma1
        w.14 = w.14 &+ w.15.smallSigma0 &+ w.7 &+ w.12.smallSigma1
        w.15 = w.15 &+ w.0.smallSigma0 &+ w.8 &+ w.13.smallSigma1
    }

    /// A block from its 16 words, `word(t)` for t in 0 ..< 16 (already converted from big-endian).
    @inline(__always)
    static func block<W>(_ word: (Int) -> W) -> Block<W> {
        (word(0), word(1), word(2), word(3), word(4), word(5), word(6), word(7),
         word(8), word(9), word(10), word(11), word(12), word(13), word(14), word(15))
    }

    /// The compression function: 64 rounds over one block (16 big-endian words already loaded).
    @inline(__always)
    static func compress<W: SHA256Word>(_ state: inout State<W>, _ block: Block<W>) {
        var w = block
        var (a, b, c, d, e, f, g, h) = state
        var bc = b ^ c
        k.withUnsafeBufferPointer { k in
            var t = 0
            while true {
                round(a, b, c, &d, e, f, g, &h, W(constant: k[t]) &+ w.0, &bc)
                round(h, a, b, &c, d, e, f, &g, W(constant: k[t + 1]) &+ w.1, &bc)
                round(g, h, a, &b, c, d, e, &f, W(constant: k[t + 2]) &+ w.2, &bc)
                round(f, g, h, &a, b, c, d, &e, W(constant: k[t + 3]) &+ w.3, &bc)
                round(e, f, g, &h, a, b, c, &d, W(constant: k[t + 4]) &+ w.4, &bc)
                round(d, e, f, &g, h, a, b, &c, W(constant: k[t + 5]) &+ w.5, &bc)
                round(c, d, e, &f, g, h, a, &b, W(constant: k[t + 6]) &+ w.6, &bc)
                round(b, c, d, &e, f, g, h, &a, W(constant: k[t + 7]) &+ w.7, &bc)
                round(a, b, c, &d, e, f, g, &h, W(constant: k[t + 8]) &+ w.8, &bc)
                round(h, a, b, &c, d, e, f, &g, W(constant: k[t + 9]) &+ w.9, &bc)
                round(g, h, a, &b, c, d, e, &f, W(constant: k[t + 10]) &+ w.10, &bc)
                round(f, g, h, &a, b, c, d, &e, W(constant: k[t + 11]) &+ w.11, &bc)
                round(e, f, g, &h, a, b, c, &d, W(constant: k[t + 12]) &+ w.12, &bc)
                round(d, e, f, &g, h, a, b, &c, W(constant: k[t + 13]) &+ w.13, &bc)
                round(c, d, e, &f, g, h, a, &b, W(constant: k[t + 14]) &+ w.14, &bc)
                round(b, c, d, &e, f, g, h, &a, W(constant: k[t + 15]) &+ w.15, &bc)
                t += 16
                if t == 64 { break }
                schedule(&w)
            }
        }
        state = (state.0 &+ a, state.1 &+ b, state.2 &+ c, state.3 &+ d,
                 state.4 &+ e, state.5 &+ f, state.6 &+ g, state.7 &+ h)
    }
}
