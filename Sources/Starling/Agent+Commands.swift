import StarlingCore
import StarlingPOSIX

/// A registered command's handler, as the agent runs it: the reply's status and JSON body.
typealias CommandHandler = @Sendable (CommandRequest) async -> (ControlStatus, String)

// Custom commands (Protocol.md §3.5.3, issue 18): an embedder registers a handler for a command
// name; a request for it (from `starling call`, or another agent's `request`) runs the handler
// once, outside the loop lock, and its result becomes the reply.
extension Agent {
    /// Registers `handler` for `command`: every request for it that reaches this agent (from
    /// `starling call COMMAND`, or another agent's ``request(_:args:target:expected:timeout:)``)
    /// runs `handler` once, in its own task. The reply's body is `{"name": AGENT, "command":
    /// COMMAND, "result": R}`, R being the ``JSON`` value the handler returned (literals work:
    /// `return ["depth": 12]`). A thrown error
    /// answers with status `error` and the error's description; a handler still running after
    /// `timeout` is answered with status `error` ("timed out"), and its result is dropped.
    /// Registering a command again replaces its handler.
    ///
    /// Throws ``AgentError/invalidArgument(_:)`` for a built-in command name (`ping`, `stats`,
    /// …), a name outside 1–32 bytes, or more than 256 commands.
    public func handle(
        _ command: String, timeout: Duration = .seconds(10),
        _ handler: @escaping @Sendable (CommandRequest) async throws -> JSON
    ) throws(AgentError) {
        let name = configuration.name
        let wrapped: CommandHandler = { request in
            do {
                let result = try await Self.within(timeout) { try await handler(request) }
                guard let result else { return (.error, Self.errorBody("the handler of '\(command)' timed out after \(timeout)")) }
                return (.ok, JSON.object([("name", .string(name)), ("command", .string(command)), ("result", result)]).serialized())
            } catch {
                return (.error, Self.errorBody("\(error)"))
            }
        }
        let refused = withCore { state, _ -> [(command: String, reason: String)] in
            let refused = state.peer.register(commands: [command])
            if refused.isEmpty { state.commands[ByteString(command)] = wrapped }
            return refused
        }
        if let first = refused.first { throw .invalidArgument(first.reason) }
    }

    /// Removes the handler of `command`: its requests are answered "unknown command" again.
    public func removeHandler(_ command: String) {
        withCore { state, _ in
            state.peer.unregister(command: command)
            state.commands[ByteString(command)] = nil
        }
    }

    /// Runs a command's handler in its own task and answers the core with its result.
    func start(_ request: CommandRequest, handler: CommandHandler?) {
        Task.detached { [self] in
            let (status, body) = await handler?(request) ?? (.unknownCommand, Self.errorBody("unknown command '\(request.command)'"))
            withCore { state, now in
                perform(state.peer.answer(request, status: status, body: body, now: now), state: &state, now: now)
            }
            wakePipe.wake()
        }
    }

    /// `body`'s result, or nil when `limit` passed first (the body's task is cancelled).
    static func within<Result: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> Result) async throws -> Result? {
        try await withThrowingTaskGroup(of: Result?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try? await Task.sleep(for: limit)
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
    }

    static func errorBody(_ message: String) -> String {
        JSON.object([("error", .string(message))]).serialized()
    }
}
