import StarlingCore

/// A command the agent runs for each cluster event its filter matches, like Serf's event
/// handlers (issue 18): `/bin/sh -c command`, with the event as one JSON object on standard
/// input (the object `watch` and the event log show) and `STARLING_EVENT`, `STARLING_NAME`,
/// `STARLING_CLUSTER` and the event's fields in the environment (README, "Event handlers").
/// Runs never block the agent's loop: at most ``Configuration/eventHandlerConcurrency`` at once,
/// each stopped after ``Configuration/eventHandlerTimeout``; the rest wait in a queue of
/// ``EventHandler/queueLimit`` runs.
public struct EventHandler: Sendable, Equatable, Hashable {
    /// The events it runs for, by name; empty runs it for every event. Names are the `event`
    /// field of `watch` and the event log (``eventNames``), or:
    /// - `member-join`, `member-leave`, `member-failed`, `member-update`: Serf's names for
    ///   `joined`, `left`, `dead`, `tags`;
    /// - `member`: every member event (``memberEvents``);
    /// - `user` (every user event) or `user:NAME` (user events named NAME, 1 to 64 bytes);
    /// - `*`: every event.
    public var filter: [String]
    /// Run by `/bin/sh -c`. Its standard output and error are the agent's standard error.
    public var command: String

    /// Runs for every event in `filter` (every event when it is empty); ``Configuration/validate()``
    /// checks the names.
    public init(filter: [String] = [], command: String) {
        self.filter = filter
        self.command = command
    }

    /// Runs queued beyond this (every handler slot busy) drop the oldest waiting one, counted
    /// as `handlers_dropped` in `stats`.
    public static let queueLimit = 256

    /// Events about one member: their variables are `STARLING_MEMBER_*`.
    public static let memberEvents = ["joined", "alive", "suspect", "dead", "left", "replaced", "duplicate_name", "tags"]
    /// Every event name a filter may give, as `watch` and the event log spell them. User events
    /// (`user`, `user:NAME`) are accepted too (``Agent/send(event:payload:timeout:)``).
    public static let eventNames = memberEvents + ["refuted", "searching", "synced", "alone", "revoked", "leader", "no_quorum", "stalled"]
    /// Serf's names, for people who bring their handlers along.
    static let aliases = ["member-join": "joined", "member-leave": "left", "member-failed": "dead", "member-update": "tags"]
    /// The user event kind (issue 18, user events): its `name` field is what `user:NAME` matches.
    static let userKind = "user"

    /// Parses an `--on-event` spec: `[FILTER=]COMMAND`, FILTER being comma-separated names.
    /// The text before the first `=` is a filter when it holds no white space and no `/`; it
    /// must then be a valid one (a typo must not turn into a command that does nothing). So a
    /// command that itself starts with `NAME=value` needs a filter: `*=FOO=bar notify`.
    public init(parsing spec: String) throws(AgentError) {
        let bytes = Array(spec.utf8)
        var filterText: String?
        var commandStart = 0
        if let equals = bytes.firstIndex(of: UInt8(ascii: "=")),
           !bytes[..<equals].contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\n") }) {
            filterText = String(decoding: bytes[..<equals], as: UTF8.self)
            commandStart = equals + 1
        }
        let command = String(decoding: bytes[commandStart...], as: UTF8.self)
        let filter = filterText.map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) } ?? []
        self.init(filter: filter, command: command)
        do {
            try validate()
        } catch {
            var reason = error.reason
            if filterText != nil, error.field == "filter" {
                reason += " (a command that starts with NAME=value needs a filter first: '*=\(Escape.display(spec))')"
            }
            throw .invalidConfiguration(field: "eventHandlers", reason: "'\(Escape.display(spec))': \(reason)")
        }
    }

    /// Why this handler cannot run, naming `filter` or `command`.
    struct Invalid: Error {
        var field: String
        var reason: String
    }

    /// The filter names known terms; the command is not empty and holds no NUL byte (it could
    /// not be passed to the shell whole).
    func validate() throws(Invalid) {
        guard command.utf8.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }) else {
            throw Invalid(field: "command", reason: "the command is empty")
        }
        guard !command.utf8.contains(0) else { throw Invalid(field: "command", reason: "the command holds a NUL byte") }
        for term in filter {
            guard Term(term) != nil else {
                throw Invalid(field: "filter", reason: "unknown event '\(Escape.display(term))' in the filter; known: "
                    + (Self.eventNames + Self.aliases.keys.sorted() + ["member", "user", "user:NAME", "*"]).joined(separator: ", "))
            }
        }
    }

    /// One filter term, resolved.
    enum Term: Hashable {
        case all
        /// One or more event names (an alias, a name, `member`).
        case events([[UInt8]])
        case anyUser
        case user([UInt8])

        init?(_ text: String) {
            let bytes = Array(text.utf8)
            if text == "*" {
                self = .all
            } else if text == "member" {
                self = .events(EventHandler.memberEvents.map { Array($0.utf8) })
            } else if text == "user" {
                self = .anyUser
            } else if bytes.starts(with: Array("user:".utf8)) {
                let name = bytes.dropFirst(5)
                // Names are byte strings: no control characters and no comma, 1 to 64 bytes.
                guard (1...64).contains(name.count), !name.contains(where: { $0 < 0x20 || $0 == 0x7f || $0 == UInt8(ascii: ",") }) else { return nil }
                self = .user(Array(name))
            } else if let name = EventHandler.aliases.first(where: { $0.key.utf8.elementsEqual(bytes) })?.value {
                self = .events([Array(name.utf8)])
            } else if EventHandler.eventNames.contains(where: { $0.utf8.elementsEqual(bytes) }) {
                self = .events([bytes])
            } else {
                return nil
            }
        }
    }
}

extension Configuration {
    /// The handlers, their concurrency and their time limit (called by ``validate()``).
    func validateEventHandlers() throws(AgentError) {
        for handler in eventHandlers {
            do { try handler.validate() } catch {
                throw .invalidConfiguration(field: "eventHandlers", reason: "'\(Escape.display(handler.command))': \(error.reason)")
            }
        }
        guard (1...64).contains(eventHandlerConcurrency) else {
            throw .invalidConfiguration(field: "eventHandlerConcurrency", reason: "must be 1 to 64 (it is \(eventHandlerConcurrency))")
        }
        guard eventHandlerTimeout >= .milliseconds(10), eventHandlerTimeout <= .seconds(86_400) else {
            throw .invalidConfiguration(field: "eventHandlerTimeout", reason: "must be 10 ms to 1 day (it is \(eventHandlerTimeout))")
        }
    }
}

/// What a handler's filter makes of events: built once from the validated filter.
struct EventMatcher: Sendable {
    private var all = false
    private var anyUser = false
    private var events: Set<[UInt8]> = []
    private var users: Set<[UInt8]> = []

    init(_ filter: [String]) {
        if filter.isEmpty { all = true }
        for term in filter.compactMap(EventHandler.Term.init) {
            switch term {
            case .all: all = true
            case .anyUser: anyUser = true
            case .events(let names): events.formUnion(names)
            case .user(let name): users.insert(name)
            }
        }
    }

    /// Whether an event of `kind` (and, for user events, named `userEvent`) matches.
    func matches(kind: String, userEvent: String? = nil) -> Bool {
        if all { return true }
        let kindBytes = Array(kind.utf8)
        if bytesEqual(kind, EventHandler.userKind) {
            return anyUser || userEvent.map { users.contains(Array($0.utf8)) } == true
        }
        return events.contains(kindBytes)
    }
}

extension EventHandler {
    /// The variables a run gets besides the agent's scrubbed environment: `STARLING_EVENT`,
    /// `STARLING_NAME` (this agent), `STARLING_CLUSTER`, then each scalar field of the event:
    /// `STARLING_MEMBER_<FIELD>` for member events, `STARLING_<FIELD>` for others (a field that
    /// would take one of the first three names becomes `STARLING_EVENT_<FIELD>`). null is the
    /// empty string; a member's `tags` object is `key=value,…` in key order; other arrays and
    /// objects (revoked ids) are on standard input only, as is a value holding a NUL byte.
    static func environment(kind: String, fields: [(String, JSON)], agent: String, cluster: String) -> [String: String] {
        var out = ["STARLING_EVENT": kind, "STARLING_NAME": agent, "STARLING_CLUSTER": cluster]
        let member = memberEvents.contains { bytesEqual($0, kind) }
        for (field, value) in fields {
            let text: String
            switch value {
            case .string(let string): text = string
            case .number, .bool: text = value.serialized()
            case .null: text = ""
            case .object where field == "tags": text = MemberTags(json: value).description
            case .array, .object: continue
            }
            guard !text.utf8.contains(0) else { continue }
            let upper = String(field.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
            var name = (member ? "STARLING_MEMBER_" : "STARLING_") + upper
            if out[name] != nil { name = "STARLING_EVENT_" + upper }
            out[name] = text
        }
        return out
    }
}
