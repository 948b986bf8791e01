import StarlingCore
import StarlingPOSIX
import Synchronization

/// The `--metrics` endpoint: a minimal HTTP/1.1 responder for `GET /metrics`, driven by the
/// agent's poll loop and never blocking it. Every call is non-blocking; a read or a write that
/// would block waits for the next poll. Bounded in every way a client could hold it:
///
/// - ``maxConnections`` open at once, each accepted as soon as it arrives; when the table is
///   full a new connection evicts the oldest one that has not sent a whole request yet (a silent
///   or slow client), so silent connections cannot keep a scraper waiting in the backlog;
/// - a request head (request line and headers) of ``requestLimit`` bytes at most, else 431;
/// - ``connectionDeadline`` from accept to close, whatever the client does (silent, slow to
///   send, slow to read): a scrape after it is served.
///
/// After the reply the sending side is shut down and what the client still sends is read and
/// discarded (up to ``drainLimit``) until it closes: closing with unread input would make the
/// kernel reset the connection, and the client could lose the reply.
final class MetricsServer: Sendable {
    static let requestLimit = 8 << 10
    static let maxConnections = 8
    /// Connections accepted per loop turn at most (the rest wait for the next turn).
    static let acceptsPerTurn = 16
    static let connectionDeadline: UInt64 = 2_000_000_000
    static let drainLimit = 64 << 10
    /// Accepting pauses this long after accept failed (out of descriptors): the listener stays
    /// readable, and polling it again at once would spin the loop.
    static let acceptPause: UInt64 = 100_000_000

    /// The bound address (the kernel's port when 0 was asked).
    let local: Endpoint
    private let state: Mutex<State>

    /// What the endpoint counts about itself (shown on its own page).
    struct Stats: Sendable {
        /// Responses by HTTP status code (a fixed handful of codes).
        var responses: [Int: UInt64] = [:]
        /// Connections closed at their deadline before the reply was out.
        var deadlineCloses: UInt64 = 0
        /// Connections closed to make room, before they had sent a whole request.
        var evictions: UInt64 = 0
    }

    /// What the loop polls for the endpoint this time round.
    struct Interest: Sendable {
        var reading: [Int32] = []
        var writing: [Int32] = []
        /// When the endpoint has something to do without any input (a deadline).
        var wakeAt: UInt64?

        static let idle = Interest()

        var descriptors: [Int32] { reading + writing }

        /// The loop's poll timeout, shortened to wake for the endpoint's deadline.
        func timeout(_ loopTimeout: UInt64, now: UInt64) -> UInt64 {
            guard let wakeAt else { return loopTimeout }
            return min(loopTimeout, wakeAt &- min(wakeAt, now))
        }
    }

    private enum Phase: Sendable { case reading, writing, draining }

    private struct Connection: Sendable {
        let socket: TCPConnection
        let deadline: UInt64
        var phase = Phase.reading
        /// The request head while reading, the reply while writing.
        var bytes: [UInt8] = []
        var sent = 0
        var drained = 0
    }

    private struct State: Sendable {
        var listener: TCPListener?
        /// Oldest first.
        var connections: [Connection] = []
        var acceptPausedUntil: UInt64 = 0
        var stats = Stats()
    }

    /// Binds and listens on `endpoint`.
    init(listen endpoint: Endpoint) throws(Errno) {
        let listener: TCPListener
        do { listener = try TCPListener.listen(on: endpoint) } catch { throw Errno(error.rawValue, "metrics: \(error.operation)") }
        local = listener.local
        state = Mutex(State(listener: listener))
    }

    var stats: Stats { state.withLock { $0.stats } }

    /// The descriptors to poll: each open connection (for reading, or for writing while a reply
    /// waits) and the earliest deadline, and the listener unless accepting is paused.
    func interest(now: UInt64) -> Interest {
        state.withLock { state in
            var interest = Interest()
            for connection in state.connections {
                if connection.phase == .writing {
                    interest.writing.append(connection.socket.descriptor)
                } else {
                    interest.reading.append(connection.socket.descriptor)
                }
                interest.wakeAt = min(interest.wakeAt ?? .max, connection.deadline)
            }
            guard let listener = state.listener else { return interest }
            if now < state.acceptPausedUntil {
                interest.wakeAt = min(interest.wakeAt ?? .max, state.acceptPausedUntil)
            } else {
                interest.reading.append(listener.descriptor)
            }
            return interest
        }
    }

    /// Moves the endpoint on after a poll that found `ready` ready (called every time round, so
    /// deadlines are kept whatever was ready). `page` renders `/metrics`.
    func serve(ready: [Int32], page: (Stats) -> String) {
        let now = System.now().nanos
        // One rendering per turn, however many requests complete in it.
        var rendered: String?
        withoutActuallyEscaping(page) { page in
            let cachedPage = { (stats: Stats) -> String in
                if let rendered { return rendered }
                let text = page(stats)
                rendered = text
                return text
            }
            serve(ready: ready, now: now, page: cachedPage)
        }
    }

    private func serve(ready: [Int32], now: UInt64, page cachedPage: (Stats) -> String) {
        state.withLock { state in
            var kept: [Connection] = []
            for connection in state.connections {
                if now >= connection.deadline {
                    if connection.phase != .draining { state.stats.deadlineCloses &+= 1 }
                    continue  // dropping it closes it
                }
                if !ready.contains(connection.socket.descriptor) {
                    kept.append(connection)
                } else if let next = advance(connection, stats: &state.stats, page: cachedPage) {
                    kept.append(next)
                }
            }
            state.connections = kept
            guard let listener = state.listener, now >= state.acceptPausedUntil, ready.contains(listener.descriptor) else { return }
            for _ in 0..<Self.acceptsPerTurn {
                // Full, and every open connection is being answered: the next waits in the backlog.
                if state.connections.count >= Self.maxConnections, !state.connections.contains(where: { $0.phase == .reading }) { return }
                let socket: TCPConnection
                do {
                    guard let accepted = try listener.accept() else { return }
                    socket = accepted
                } catch {
                    state.acceptPausedUntil = now &+ Self.acceptPause
                    return
                }
                // Room for a new client at the cost of the oldest that has not asked yet.
                if state.connections.count >= Self.maxConnections, let oldest = state.connections.firstIndex(where: { $0.phase == .reading }) {
                    state.connections.remove(at: oldest)
                    state.stats.evictions &+= 1
                }
                // The request is often there already: read it now rather than a poll later.
                let connection = Connection(socket: socket, deadline: now &+ Self.connectionDeadline)
                if let next = advance(connection, stats: &state.stats, page: cachedPage) { state.connections.append(next) }
            }
        }
    }

    /// Closes the listener and the open connection (the loop stopped).
    func stop() {
        state.withLock { state in
            state.connections = []
            state.listener = nil
        }
    }

    // MARK: One connection

    /// Reads, writes or drains as far as the socket allows; nil once the connection is done
    /// (closed by dropping it) or failed.
    private func advance(_ connection: Connection, stats: inout Stats, page: (Stats) -> String) -> Connection? {
        var connection = connection
        do throws(Errno) {
            if connection.phase == .reading {
                while Self.headEnd(connection.bytes) == nil, connection.bytes.count <= Self.requestLimit {
                    // One byte past the limit at most: enough to know the head is too long.
                    guard let bytes = try connection.socket.receive(upTo: min(4096, Self.requestLimit + 1 - connection.bytes.count)) else {
                        return connection  // more later
                    }
                    if bytes.isEmpty { return nil }  // closed before a whole request: nothing to answer
                    connection.bytes += bytes
                }
                let (code, response) = Self.respond(to: connection.bytes, stats: stats, page: page)
                stats.responses[code, default: 0] &+= 1
                connection.bytes = response
                connection.phase = .writing
            }
            if connection.phase == .writing {
                while connection.sent < connection.bytes.count {
                    guard let count = try connection.socket.send(connection.bytes[connection.sent...]) else {
                        return connection  // the socket buffer is full: wait for POLLOUT
                    }
                    connection.sent += count
                }
                try connection.socket.finishSending()
                connection.bytes = []
                connection.phase = .draining
            }
            while true {
                guard let bytes = try connection.socket.receive(upTo: 4096) else { return connection }
                connection.drained += bytes.count
                if bytes.isEmpty || connection.drained > Self.drainLimit { return nil }
            }
        } catch {
            return nil  // reset, broken pipe: the client is gone
        }
    }

    /// Where the request head ends (the index after its empty line), or nil while incomplete.
    /// Lines end in CRLF or, leniently, LF.
    static func headEnd(_ bytes: [UInt8]) -> Int? {
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == 0x0A {
                if bytes[index + 1] == 0x0A { return index + 2 }
                if bytes[index + 1] == 0x0D, index + 2 < bytes.count, bytes[index + 2] == 0x0A { return index + 3 }
            }
            index += 1
        }
        return nil
    }

    /// The status code and the whole reply to a request head (or to more than
    /// ``requestLimit`` bytes without one).
    static func respond(to head: [UInt8], stats: Stats, page: (Stats) -> String) -> (Int, [UInt8]) {
        guard headEnd(head) != nil else { return (431, reply(431, "Request Header Fields Too Large", "request head over 8 KiB\n")) }
        let line = head.prefix { $0 != 0x0A }
        let parts = (line.last == 0x0D ? line.dropLast() : line).split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].elementsEqual("HTTP/1.1".utf8) || parts[2].elementsEqual("HTTP/1.0".utf8) else {
            return (400, reply(400, "Bad Request", "not an HTTP/1.x request line\n"))
        }
        let path = parts[1].prefix { $0 != UInt8(ascii: "?") }
        guard path.elementsEqual("/metrics".utf8) else { return (404, reply(404, "Not Found", "metrics are at /metrics\n")) }
        guard parts[0].elementsEqual("GET".utf8) else {
            return (405, reply(405, "Method Not Allowed", "only GET\n", extra: "Allow: GET\r\n"))
        }
        return (200, reply(200, "OK", page(stats), type: "text/plain; version=0.0.4; charset=utf-8"))
    }

    private static func reply(_ code: Int, _ reason: String, _ body: String, type: String = "text/plain; charset=utf-8", extra: String = "") -> [UInt8] {
        let body = Array(body.utf8)
        let head = "HTTP/1.1 \(code) \(reason)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\n\(extra)Connection: close\r\n\r\n"
        return Array(head.utf8) + body
    }
}
