/// Checked conversions of JSON numbers. Reply bodies and files are hostile (issue 14 item 5):
/// `UInt64(json.numberValue!)` traps on a negative, fractional, huge or missing number, while
/// these return nil and let the caller show "?" or refuse the input.
extension JSON {
    /// The number when it is a whole number in `0...UInt64.max`; nil for anything else
    /// (a fraction, a negative, a value beyond 2^64, infinity, or not a number at all).
    public var uint64Value: UInt64? {
        guard case .number(let value) = self else { return nil }
        return UInt64(exactly: value)
    }

    /// The number when it is a whole number in `Int64.min...Int64.max`; nil for anything else.
    public var int64Value: Int64? {
        guard case .number(let value) = self else { return nil }
        return Int64(exactly: value)
    }
}
