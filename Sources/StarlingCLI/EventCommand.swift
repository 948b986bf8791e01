@_spi(Testing) import Starling
import StarlingCore
import StarlingPOSIX

extension Client {
    /// `event NAME [PAYLOAD | --file F]` (issue 18): one agent — the one `--to` names, else the
    /// first to answer a ping — becomes the event's origin and sends it to every live agent
    /// (Protocol.md §3.6, §6.7). The CLI reports the origin's answer: it does not wait for the
    /// deliveries, which the origin repairs by itself.
    func event() throws(CLIError) -> Int32 {
        let name = args.positional[0]
        guard UserEvent.isValidName(name) else {
            throw .usage(UsageError("event name '\(Escape.display(name))' must be 1 to 64 bytes without control characters or commas"))
        }
        var payload = args.positional.count > 1 ? args.positional[1] : ""
        if let file = args.value("--file") {
            guard args.positional.count == 1 else { throw .usage(UsageError("give the payload as an argument or with --file, not both")) }
            guard !file.isEmpty, let bytes = file == "-" ? Self.readStandardInput() : try? System.readFile(file) else {
                throw .usage(UsageError("cannot read the payload from \(file == "-" ? "standard input" : Escape.display(file))"))
            }
            guard bytes.count <= Limits.userEventPayloadBytes.upperBound else {
                throw .usage(UsageError("the payload is at most \(Limits.userEventPayloadBytes.upperBound) bytes (\(Escape.display(file)) has \(bytes.count))"))
            }
            guard let text = String(validating: bytes, as: UTF8.self) else { throw .usage(UsageError("the payload must be UTF-8 text")) }
            payload = text
        }
        guard Limits.userEventPayloadBytes.contains(payload.utf8.count) else {
            throw .usage(UsageError("the payload is at most \(Limits.userEventPayloadBytes.upperBound) bytes (it has \(payload.utf8.count))"))
        }
        guard target.isEmpty || Glob.isLiteral(target) else {
            throw .usage(UsageError("event --to takes one agent name (the origin), not a pattern or a list"))
        }
        // Exactly one agent may originate: every agent the request reached would send it once.
        var origin = target
        if origin.isEmpty {
            let found = send("ping", any: true)
            guard let first = found.replies.first(where: { $0.status == .ok }) else { return exitCode(found) }
            origin = first.name
        }
        var options = options()
        options.expected = 1
        options.limit = nil
        // Knowing where the origin is, a lost request or reply is asked again by unicast within
        // milliseconds (Protocol.md §6.5); the origin runs it once and repeats its answer.
        if seed == nil, let known = client.liveResponders(target: origin, options: self.options()), known.count == 1 { options.responders = known }
        let result = client.request("event", args: payload.isEmpty ? [name] : [name, payload], target: origin, to: seed, options: options)
        if json {
            Output.json(result.replies.first?.json ?? .null)
        } else if let reply = result.replies.first, reply.status == .ok {
            let document = reply.json
            Output.line("event \(Escape.display(name)) sent by \(Escape.display(reply.name)) (sequence \(Display.count(document["sequence"])), "
                + "stamp \(Display.count(document["stamp"]))) to \(Display.count(document["members"])) other agents")
        }
        return exitCode(result)
    }

    /// Standard input, whole (reading stops once it is over the payload limit).
    static func readStandardInput() -> [UInt8] {
        var data: [UInt8] = []
        while data.count <= Limits.userEventPayloadBytes.upperBound, let line = readLine(strippingNewline: false) { data += line.utf8 }
        return data
    }
}
