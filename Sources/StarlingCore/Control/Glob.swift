/// Shell-style name matching for control targets (Protocol.md §3.5): a comma-separated list of
/// patterns where `*` matches any run, `?` one character, everything else itself. An empty
/// target matches every name.
public enum Glob {
    public static func matchesTarget(_ target: String, _ name: String) -> Bool {
        if target.isEmpty { return true }
        // Split at every comma code point (byte 0x2C), never by Character: a comma followed by
        // a combining mark still separates (Protocol.md §3.5.2).
        let name = Array(name.unicodeScalars)
        return target.unicodeScalars.split(separator: ",", omittingEmptySubsequences: false).contains { matches(Array($0), name) }
    }

    public static func matches(_ pattern: String, _ name: String) -> Bool {
        matches(Array(pattern.unicodeScalars), Array(name.unicodeScalars))
    }

    /// Matching over code points: `?` is one code point, `*` is always a wildcard.
    static func matches(_ p: [Unicode.Scalar], _ n: [Unicode.Scalar]) -> Bool {
        var pi = 0
        var ni = 0
        var star = -1
        var mark = 0
        while ni < n.count {
            if pi < p.count && p[pi] == "*" {
                star = pi
                mark = ni
                pi += 1
            } else if pi < p.count && (p[pi] == "?" || p[pi] == n[ni]) {
                pi += 1
                ni += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ni = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }

    /// True when the pattern names exactly one node (no wildcard characters).
    public static func isLiteral(_ pattern: String) -> Bool {
        !pattern.isEmpty && !pattern.unicodeScalars.contains { $0 == "*" || $0 == "?" || $0 == "," }
    }
}
