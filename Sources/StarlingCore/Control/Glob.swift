/// Control targets (Protocol.md §3.5.2): a comma-separated list of patterns, each one or more
/// terms joined by `+` that must all match. A term with `=` is a tag term, `key=glob` over the
/// value of the receiver's tag `key`; any other term is a glob over its name. In globs `*`
/// matches any run, `?` one character, everything else itself. An empty target matches all.
public enum Glob {
    public static func matchesTarget(_ target: String, _ name: String, tags: MemberTags = .empty) -> Bool {
        if target.isEmpty { return true }
        // Split at every comma and plus code point (bytes 0x2C, 0x2B), never by Character: a
        // separator followed by a combining mark still separates (Protocol.md §3.5.2).
        let name = Array(name.unicodeScalars)
        return target.unicodeScalars.split(separator: ",", omittingEmptySubsequences: false).contains { pattern in
            pattern.split(separator: "+", omittingEmptySubsequences: false).allSatisfy { matchesTerm(Array($0), name, tags) }
        }
    }

    private static func matchesTerm(_ term: [Unicode.Scalar], _ name: [Unicode.Scalar], _ tags: MemberTags) -> Bool {
        guard let equals = term.firstIndex(of: "=") else { return matches(term, name) }
        var key = String.UnicodeScalarView()
        key.append(contentsOf: term[..<equals])
        guard let value = tags[String(key)] else { return false }
        return matches(Array(term[(equals + 1)...]), Array(value.unicodeScalars))
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

    /// True when the target names exactly one node: not empty, no wildcard, no list, no tag term.
    public static func isLiteral(_ pattern: String) -> Bool {
        !pattern.isEmpty && !pattern.unicodeScalars.contains { $0 == "*" || $0 == "?" || $0 == "," || $0 == "+" || $0 == "=" }
    }
}
