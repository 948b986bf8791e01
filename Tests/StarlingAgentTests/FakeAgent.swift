import Foundation
import Starling
import StarlingCore
import StarlingPOSIX
import Synchronization

/// An agent that is not one: it hears CONTROL_REQUESTs on a loopback group (and on its unicast
/// socket) and answers them with whatever pages `answer` returns — forged bodies, a reply with
/// pages missing, or `revoked` paged by cursor. It lets the CLI tests show what the `starling`
/// binary does with replies no honest agent sends. It sends only to the requester, on loopback,
/// and stops by itself after `lifetimeSeconds`.
final class FakeAgent: Sendable {
    /// The pages of one reply: all of them, or `only` some indexes of `count` (the rest "lost").
    struct Answer: Sendable {
        var status: ControlStatus = .ok
        var body: String
        var only: Set<Int>?

        init(_ body: String, status: ControlStatus = .ok, only: Set<Int>? = nil) {
            self.body = body
            self.status = status
            self.only = only
        }
    }

    let name: String
    let group: Endpoint
    /// What the answering thread shares with the test.
    private final class Shared: Sendable {
        let state = Mutex<(requests: [ControlRequest], stop: Bool, finished: Bool)>(([], false, false))
    }
    private let shared = Shared()

    /// Requests seen so far (retries included).
    var requests: [ControlRequest] { shared.state.withLock { $0.requests } }

    init(name: String, group: Endpoint, lifetimeSeconds: Double = 30, answer: @escaping @Sendable (ControlRequest) -> Answer?) throws {
        self.name = name
        self.group = group
        let listener = try UDPSocket.multicast(group: group, interface: 0x7F00_0001)
        let unicast = try UDPSocket.unicast(interface: 0x7F00_0001, port: 0)
        let deadline = Date().addingTimeInterval(lifetimeSeconds)
        try startThread { [shared] in
            var rng = SplitMix64(seed: System.randomUInt64())
            let id = NodeID.random(using: &rng)
            let codec = Codec()
            var sequence: UInt64 = 0
            var buffer = [UInt8](repeating: 0, count: 2048)
            while Date() < deadline, !shared.state.withLock({ $0.stop }) {
                let ready = (try? Poller.wait([listener.descriptor, unicast.descriptor], timeoutNanos: 20_000_000)) ?? []
                for socket in [listener, unicast] where ready.contains(socket.descriptor) {
                    while let (count, source) = buffer.withUnsafeMutableBytes({ try? socket.receive(into: $0) }) ?? nil {
                        guard case let message? = try? codec.decode(Array(buffer[0..<min(count, buffer.count)])),
                              case .controlRequest(let request) = message.payload, Glob.matchesTarget(request.target, name) else { continue }
                        shared.state.withLock { $0.requests.append(request) }
                        guard let answer = answer(request) else { continue }
                        let bytes = Array(answer.body.utf8)
                        let chunk = 1_000
                        let pages = max(1, (bytes.count + chunk - 1) / chunk)
                        let replyTo = source.with(port: message.header.replyPort)
                        for page in 0..<pages where answer.only?.contains(page) ?? true {
                            sequence += 1
                            let header = Header(sequence: sequence, stamp: sequence, sender: id, incarnation: 0, replyPort: unicast.local.port,
                                cluster: "starling", name: name)
                            let body = Array(bytes[min(page * chunk, bytes.count)..<min((page + 1) * chunk, bytes.count)])
                            let reply = ControlReply(requestID: request.requestID, status: answer.status, memberCount: 1,
                                page: UInt16(page), pageCount: UInt16(pages), body: body)
                            if let datagram = try? codec.encode(Message(header: header, payload: .controlReply(reply))) {
                                _ = try? unicast.send(datagram, to: replyTo)
                            }
                            // Paced so that a long reply does not overflow the CLI's socket here.
                            if page % 64 == 63 { usleep(1_000) }
                        }
                    }
                }
            }
            shared.state.withLock { $0.finished = true }
        }
    }

    /// Stops the thread and waits (up to 5 s) until it has.
    func stop() {
        shared.state.withLock { $0.stop = true }
        let deadline = Date().addingTimeInterval(5)
        while !shared.state.withLock({ $0.finished }), Date() < deadline { usleep(5_000) }
    }

    deinit { shared.state.withLock { $0.stop = true } }

    /// A paging agent per the agreed `revoked` protocol, holding `ids` (sorted here by bytes).
    static func pagedRevoked(_ ids: [String], name: String) -> @Sendable (ControlRequest) -> Answer? {
        let sorted = ids.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        return { request in
            guard request.command == "revoked" else { return nil }
            let limit = request.args.first.flatMap { Int($0) }.map { min(max($0, 1), 1_000) } ?? 1_000
            let after = request.args.count > 1 ? request.args[1] : nil
            // The first id strictly after the cursor, by binary search.
            var start = 0
            if let after {
                var high = sorted.count
                while start < high {
                    let middle = (start + high) / 2
                    if after.utf8.lexicographicallyPrecedes(sorted[middle].utf8) { high = middle } else { start = middle + 1 }
                }
            }
            let end = min(sorted.count, start + limit)
            let rows = sorted[start..<end].map { JSON.object([("id", .string($0)), ("revoked_at_ms", .int(1_700_000_000_000))]) }
            let body = JSON.object([("name", .string(name)), ("count", .int(sorted.count)), ("ids", .array(Array(rows))),
                                    ("more", .bool(end < sorted.count))])
            return Answer(body.serialized())
        }
    }
}
