@_spi(Testing) import Starling
import StarlingCore

extension Client {
    /// `call COMMAND [ARG...]`: a command an embedding program registered with `agent.handle`
    /// (Protocol.md §3.5.3), on every agent or those `--to` names. Each agent's `result` is
    /// printed as JSON after its name; an agent without the command answers "unknown command"
    /// (status 3), reported on stderr, and the exit code is then 1.
    func call() throws(CLIError) -> Int32 {
        let command = args.positional[0]
        let arguments = Array(args.positional.dropFirst())
        do {
            try Arguments.checkText(command, "the command", Limits.commandBytes)
            for argument in arguments { try Arguments.checkText(argument, "an argument", Limits.argBytes) }
        } catch {
            throw .usage(error)
        }
        guard client.requestBatches(arguments, command: command, target: target).count <= 1 else {
            throw .usage(UsageError("the arguments do not fit one request (at most \(Limits.maxArgs), about 1,300 bytes in all)"))
        }
        let result = send(command, arguments)
        reportDuplicates(result.replies)
        let replies = result.replies.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        if json {
            Output.json(.array(replies.map(\.json)))
        } else {
            for reply in replies where reply.status == .ok {
                Output.line("\(Escape.display(reply.name)): \(Escape.display(reply.json["result"]?.serialized() ?? reply.body))")
            }
        }
        return exitCode(result)
    }
}
