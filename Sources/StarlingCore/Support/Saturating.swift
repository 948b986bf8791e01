extension UInt64 {
    /// `self + other`, or `.max` where the sum would not fit: deadlines far away stay far away
    /// instead of wrapping into the past.
    package func saturatingAdd(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }

    /// `self × other`, or `.max` where the product would not fit.
    package func saturatingMultiplied(by other: UInt64) -> UInt64 {
        let (product, overflow) = multipliedReportingOverflow(by: other)
        return overflow ? .max : product
    }
}
