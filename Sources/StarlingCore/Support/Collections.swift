extension UInt64 {
    /// `base + delta`, or the far future instead of a wrap.
    static func later(_ base: UInt64, _ delta: UInt64) -> UInt64 {
        delta > UInt64.max - base ? UInt64.max : base + delta
    }
}

extension Dictionary {
    /// Changes the value at `key` in place, when there is one (no copy of the value, no `!`).
    mutating func modify(_ key: Key, _ change: (inout Value) -> Void) {
        guard let index = index(forKey: key) else { return }
        change(&values[index])
    }
}
