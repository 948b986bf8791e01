/// Natural logarithms without Foundation (the core imports nothing): x = s · 2^e with s in
/// [1, 2), ln x = e · ln 2 + 2 · atanh((s − 1) / (s + 1)), the series summed to 1e-9.
enum Logarithm {
    static let ln2 = 0.693_147_180_559_945_3
    static let ln10 = 2.302_585_092_994_046

    /// ln x for finite x > 0; 0 for anything else (callers clamp their inputs to ≥ 1 anyway).
    static func natural(_ x: Double) -> Double {
        guard x > 0, x.isFinite else { return 0 }
        let s = x.significand
        let y = (s - 1) / (s + 1)
        let y2 = y * y
        var term = y
        var sum = 0.0
        for k in stride(from: 1, through: 19, by: 2) {
            sum += term / Double(k)
            term *= y2
        }
        return 2 * sum + Double(x.exponent) * ln2
    }

    /// log10 n, at least 1: the "node scale" by which timeouts grow with the size of the view.
    static func nodeScale(_ n: Int) -> Double {
        max(1, natural(Double(max(n, 1))) / ln10)
    }
}

extension UInt64 {
    /// `value` in nanoseconds, clamped to 0…UInt64.max (never a trap on NaN or infinity).
    init(clampingNanos value: Double) {
        if !(value > 0) {
            self = 0
        } else if value >= 18_446_744_073_709_549_568 {
            self = .max
        } else {
            self = UInt64(value)
        }
    }
}
