/// Literals for ``JSON``, so that a command handler can return `["depth": 12, "queues": ["a", "b"]]`.
/// A dictionary literal keeps the order it is written in. There is deliberately no `nil`
/// literal: with one, `json["key"] == nil` would compare with `.null` instead of asking whether
/// the key is there.
extension JSON: ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) { self = .object(elements) }
}
