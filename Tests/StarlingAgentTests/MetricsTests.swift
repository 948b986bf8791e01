import Foundation
@_spi(Testing) import Starling
import StarlingCore
import StarlingPOSIX
import XCTest

/// issue 20 "Metrics": `GET /metrics` on a real agent, scraped over loopback TCP and parsed as
/// the Prometheus text format; the responder's refusals and its bounds.
final class MetricsTests: XCTestCase {
    override func setUpWithError() throws { try Loopback.requireMulticast() }

    private static let anyLoopbackPort = Endpoint(address: 0x7F00_0001, port: 0)

    func testScrapeParsesAndShowsMembersDropsAndLeader() async throws {

        // issue 20 Metrics: the page parses, and shows real values (members after two agents met, a drop, a leader).
        let group = Loopback.group()
        let a = try Loopback.agent("ma", group: group) { $0.metrics = Self.anyLoopbackPort }
        let b = try Loopback.agent("mb", group: group)
        defer { for agent in [a, b] { agent.shutdown(); agent.waitUntilFinished() } }
        let endpoint = try XCTUnwrap(a.metricsEndpoint)
        XCTAssertNotEqual(endpoint.port, 0, "the bound port is reported")
        XCTAssertTrue(Loopback.eventually { a.members().first?.status == .alive && b.members().first?.status == .alive })
        // A datagram that is not Starling's: dropped and counted as bad_magic.
        let sender = try UDPSocket.unicast(interface: 0x7F00_0001, port: 0)
        try sender.send([UInt8](repeating: 0x41, count: 100), to: a.endpoint)
        let elected = try await b.elect("jobs")
        XCTAssertTrue(Loopback.eventually { a.leader(of: "jobs") == elected })
        var page = Exposition.Page()
        XCTAssertTrue(Loopback.eventually {
            page = (try? Exposition.parse(Scrape.get(endpoint).body)) ?? Exposition.Page()
            // a probes b once a protocol period (0.15 s) passed.
            return page.value("starling_drops_total", ["reason": "bad_magic"]) ?? 0 >= 1
                && page.value("starling_probes_sent_total", ["type": "ping"]) ?? 0 >= 1
        }, "the bad datagram and a's probes are counted: \(page.samples)")
        XCTAssertEqual(page.value("starling_members", ["status": "alive"]), 2, "this agent and the other")
        XCTAssertEqual(page.value("starling_members", ["status": "dead"]), 0)
        XCTAssertEqual(page.value("starling_leader", ["topic": "jobs", "leader": elected.leader]), 1)
        XCTAssertEqual(page.value("starling_election_term", ["topic": "jobs"]), Double(elected.term))
        XCTAssertGreaterThanOrEqual(page.value("starling_elections_total", ["outcome": "leader"]) ?? 0, 1)
        XCTAssertEqual(page.value("starling_synced", [:]), 1)
        XCTAssertNotNil(page.value("starling_sync_duration_seconds", [:]), "mingle finished")
        XCTAssertGreaterThan(page.value("starling_datagrams_received_total", [:]) ?? 0, 0)
        XCTAssertGreaterThan(page.value("starling_sent_bytes_total", [:]) ?? 0, 0)
        XCTAssertGreaterThan(page.value("starling_resident_memory_bytes", [:]) ?? 0, 0)
        XCTAssertEqual(page.value("starling_revoked_ids", [:]), 0)
        XCTAssertEqual(page.samples.first { $0.name == "starling_build_info" }?.labels["version"], PeerConfig.softwareVersion)
        for name in ["starling_suspicions_total", "starling_refutations_total", "starling_event_loop_stall_max_seconds",
                     "starling_send_failures_total", "starling_uptime_seconds"] {
            XCTAssertNotNil(page.value(name, [:]), "\(name) is on the page")
        }
        // The embedder's way to the same page.
        XCTAssertEqual(try Exposition.parse(a.metricsText()).value("starling_members", ["status": "alive"]), 2)
    }

    func testLabelValuesFromOutsideAreEscaped() async throws {

        // issue 20 Metrics: label values escaped.
        // Topics come from the network: a quote, a backslash or a newline must not break (or
        // forge) a line of the page.
        let topic = "a\"b\\c\nstarling_up 1"
        let a = try Loopback.agent("me", group: Loopback.group()) { $0.metrics = Self.anyLoopbackPort }
        defer { a.shutdown(); a.waitUntilFinished() }
        let elected = try await a.elect(topic)
        let page = try Exposition.parse(Scrape.get(try XCTUnwrap(a.metricsEndpoint)).body)
        XCTAssertEqual(page.value("starling_leader", ["topic": Escape.display(topic), "leader": "me"]), 1, "\(page.samples)")
        XCTAssertEqual(elected.leader, "me")
        XCTAssertNil(page.samples.first { $0.name == "starling_up" }, "no line forged")
    }

    func testOtherPathsMethodsAndOversizedRequestsAreRefused() throws {

        // issue 20 Metrics: GET /metrics only (404, 405, 400), bounded request size (431).
        let a = try Loopback.agent("mr", group: Loopback.group()) { $0.metrics = Self.anyLoopbackPort }
        defer { a.shutdown(); a.waitUntilFinished() }
        let endpoint = try XCTUnwrap(a.metricsEndpoint)
        XCTAssertEqual(try Scrape.exchange(endpoint, "GET /other HTTP/1.1\r\nHost: x\r\n\r\n").status, 404)
        let post = try Scrape.exchange(endpoint, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
        XCTAssertEqual(post.status, 405)
        XCTAssertEqual(post.headers["allow"], "GET")
        XCTAssertEqual(try Scrape.exchange(endpoint, "garbage\r\n\r\n").status, 400)
        // 16 KiB of headers: refused once 8 KiB came without the end of the head.
        let big = "GET /metrics HTTP/1.1\r\nX-Filler: " + String(repeating: "x", count: 16 << 10) + "\r\n\r\n"
        XCTAssertEqual(try Scrape.exchange(endpoint, big).status, 431)
        // Every reply says it closes, and the endpoint still serves after all of them.
        let ok = try Scrape.get(endpoint)
        XCTAssertEqual(ok.status, 200)
        XCTAssertEqual(ok.headers["connection"], "close")
        XCTAssertEqual(ok.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        let page = try Exposition.parse(ok.body)
        for code in ["404", "405", "400", "431"] {
            XCTAssertEqual(page.value("starling_metrics_responses_total", ["code": code]), 1, code)
        }
        // A stopped agent's endpoint is closed, not left accepting into a backlog nobody reads.
        a.shutdown()
        XCTAssertTrue(a.waitUntilFinished())
        XCTAssertThrowsError(try Scrape.connect(endpoint))
    }

    func testSilentClientsDoNotHoldTheEndpointOrTheLoop() throws {
        // issue 20 Metrics: silent connections neither block the protocol loop nor keep a scraper
        // waiting: up to 8 are open at once, and a newcomer evicts the oldest that has not asked.
        let group = Loopback.group()
        let a = try Loopback.agent("ms", group: group) { $0.metrics = Self.anyLoopbackPort }
        let b = try Loopback.agent("mt", group: group)
        defer { for agent in [a, b] { agent.shutdown(); agent.waitUntilFinished() } }
        let endpoint = try XCTUnwrap(a.metricsEndpoint)
        XCTAssertTrue(Loopback.eventually { b.members().first?.status == .alive })
        let silent = try (0..<10).map { _ in try Scrape.connect(endpoint) }
        let scrape = Scrape.Pending()
        Thread { scrape.finish(Result { try Scrape.get(endpoint) }) }.start()
        // Meanwhile the protocol runs: a keeps receiving, and b keeps it alive.
        let received = a.counters.datagramsIn
        XCTAssertTrue(Loopback.eventually { a.counters.datagramsIn > received + 3 })
        XCTAssertEqual(b.members().first?.status, .alive)
        XCTAssertTrue(Loopback.eventually(15) { scrape.result != nil })
        let response = try XCTUnwrap(scrape.result).get()
        XCTAssertEqual(response.status, 200)
        XCTAssertGreaterThanOrEqual(try Exposition.parse(response.body).value("starling_metrics_evictions_total", [:]) ?? 0, 3,
            "11 connections for 8 places: the 3 oldest silent ones made room")
        // Every silent client is closed without a reply: evicted at once or at its 2 s deadline.
        for connection in silent { XCTAssertEqual(try Scrape.readToEnd(connection), []) }
        let later = try Exposition.parse(try Scrape.get(endpoint).body)
        XCTAssertEqual(later.value("starling_metrics_deadline_closes_total", [:]), 7, "the 7 left waited for their deadline")
        XCTAssertEqual(b.members().first?.status, .alive)
    }

    #if DEBUG
    func testBlockedWritesAndFailedAcceptsAreContinued() throws {
        // issue 20 Metrics: a write that would block waits for POLLOUT; a failing accept backs off.
        // The process's syscalls fail on purpose: one agent, and this test's client does not
        // call accept, nor send once its request is out.
        SyscallFaults.clear()
        defer { SyscallFaults.clear() }
        let a = try Loopback.agent("mf", group: Loopback.group()) { $0.metrics = Self.anyLoopbackPort }
        defer { a.shutdown(); a.waitUntilFinished() }
        let endpoint = try XCTUnwrap(a.metricsEndpoint)
        // The reply's sends would block twice: continued when the socket polls writable. The
        // faults go in once the request is out (this client's own sends would take them), so
        // on a loaded machine the reply can be out first: then it is asked again.
        var blocked = try Scrape.exchange(endpoint, Scrape.getRequest) { SyscallFaults.inject("send", [EAGAIN, EAGAIN]) }
        for _ in 0..<10 where SyscallFaults.pending("send") == 2 {
            SyscallFaults.clear()
            blocked = try Scrape.exchange(endpoint, Scrape.getRequest) { SyscallFaults.inject("send", [EAGAIN, EAGAIN]) }
        }
        XCTAssertEqual(blocked.status, 200)
        XCTAssertEqual(SyscallFaults.pending("send"), 0)
        XCTAssertNoThrow(try Exposition.parse(blocked.body))
        // Out of descriptors at accept: the listener is left alone a moment, then serves.
        SyscallFaults.inject("accept", [EMFILE])
        XCTAssertEqual(try Scrape.get(endpoint).status, 200)
        XCTAssertEqual(SyscallFaults.pending("accept"), 0)
    }
    #endif

    func testMetricsSettingIsValidated() throws {

        // issue 20 Metrics: Configuration.metrics is validated.
        var config = Configuration(name: "mv")
        config.metrics = Endpoint(address: 0xE000_0001, port: 9477)
        XCTAssertThrowsError(try Agent(config)) { error in
            guard case AgentError.invalidConfiguration(let field, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(field, "metrics")
        }
    }

    func testBadMetricsFlagIsAUsageError() throws {

        // issue 20 Metrics: a bad or busy --metrics is a usage error (exit 2); --help names the flag.
        let taken = try TCPListener.listen(on: Self.anyLoopbackPort)
        for value in ["nonsense", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "239.1.2.3:9477", "\(taken.local)"] {
            let (code, _, errors) = try Loopback.run(["agent", "--name", "mu", "--interface", "lo", "--group", Loopback.group().description, "--metrics", value])
            XCTAssertEqual(code, 2, "--metrics \(value): \(errors)")
            XCTAssertTrue(errors.contains("usage:") && errors.contains("metrics"), "--metrics \(value): \(errors)")
        }
        let (code, output, _) = try Loopback.run(["help", "agent"])
        XCTAssertEqual(code, 0)
        XCTAssertTrue(output.contains("--metrics ADDR:PORT"), output)
    }
}

/// A small HTTP/1.1 client over StarlingPOSIX's TCP, for loopback only: one request, the
/// reply read until the server closes. Every wait has a generous deadline.
enum Scrape {
    struct Response {
        var status: Int
        /// Lowercased names.
        var headers: [String: String]
        var body: String
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A scrape running on another thread.
    final class Pending: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Result<Response, Error>?

        var result: Result<Response, Error>? { lock.withLock { value } }
        func finish(_ result: Result<Response, Error>) { lock.withLock { value = result } }
    }

    static let getRequest = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain\r\n\r\n"

    static func get(_ endpoint: Endpoint) throws -> Response { try exchange(endpoint, getRequest) }

    /// Sends `request` whole (a server that stops reading may cut it short: what it replies is
    /// still read), runs `afterSending`, and reads the reply.
    static func exchange(_ endpoint: Endpoint, _ request: String, afterSending: () -> Void = {}) throws -> Response {
        let connection = try connect(endpoint)
        let bytes = Array(request.utf8)
        var sent = 0
        let deadline = Date().addingTimeInterval(10)
        while sent < bytes.count {
            guard Date() < deadline else { throw Failure(description: "request not sent in 10 s") }
            do {
                if let count = try connection.send(bytes[sent...]) { sent += count } else { try wait(connection, writing: true) }
            } catch is Errno {
                break
            }
        }
        afterSending()
        return try parse(readToEnd(connection))
    }

    /// A connected client socket.
    static func connect(_ endpoint: Endpoint) throws -> TCPConnection {
        let connection = try TCPConnection.connect(to: endpoint)
        try wait(connection, writing: true)
        if let error = connection.connectError() { throw error }
        return connection
    }

    /// Everything the server sends until it closes (a reset after a reply counts as the end).
    static func readToEnd(_ connection: TCPConnection) throws -> [UInt8] {
        var out: [UInt8] = []
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            let chunk: [UInt8]?
            do { chunk = try connection.receive(upTo: 65536) } catch { return out }
            guard let chunk else {
                try wait(connection, writing: false)
                continue
            }
            if chunk.isEmpty { return out }
            out += chunk
        }
        throw Failure(description: "the server did not close in 15 s (\(out.count) bytes read)")
    }

    private static func wait(_ connection: TCPConnection, writing: Bool) throws {
        let fd = connection.descriptor
        _ = try Poller.wait(writing ? [] : [fd], writing: writing ? [fd] : [], timeoutNanos: 1_000_000_000)
    }

    static func parse(_ bytes: [UInt8]) throws -> Response {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n") else { throw Failure(description: "no reply head in \(text.debugDescription)") }
        var lines = text[..<split.lowerBound].components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, statusLine[0] == "HTTP/1.1", let status = Int(statusLine[1]) else {
            throw Failure(description: "bad status line in \(text.debugDescription)")
        }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { throw Failure(description: "bad header \(line.debugDescription)") }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let body = String(text[split.upperBound...])
        guard headers["content-length"] == String(body.utf8.count) else {
            throw Failure(description: "Content-Length \(headers["content-length"] ?? "missing") for \(body.utf8.count) bytes")
        }
        return Response(status: status, headers: headers, body: body)
    }
}

/// A parser of the Prometheus text format 0.0.4 strict enough to hold the page to it: every
/// sample's metric has HELP and TYPE before its samples, types are counter or gauge, counters
/// end in `_total`, names and labels are well-formed, label values are escaped, values are
/// numbers, no sample is given twice.
enum Exposition {
    struct Sample: CustomStringConvertible {
        var name: String
        var labels: [String: String]
        var value: Double
        var description: String { "\(name)\(labels.sorted { $0.key < $1.key }) \(value)" }
    }

    struct Page {
        var samples: [Sample] = []
        var types: [String: String] = [:]

        /// The value of the sample with exactly these labels.
        func value(_ name: String, _ labels: [String: String]) -> Double? {
            samples.first { $0.name == name && $0.labels == labels }?.value
        }
    }

    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    static func parse(_ text: String) throws -> Page {
        var page = Page()
        var helped: Set<String> = []
        var seen: Set<String> = []
        guard text.hasSuffix("\n") else { throw Malformed(description: "the page does not end with a newline") }
        for line in text.dropLast().split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ", maxSplits: 1).map(String.init)
                guard parts.count == 2, isName(parts[0]) else { throw Malformed(description: "bad comment: \(line)") }
                if line.hasPrefix("# HELP ") {
                    guard helped.insert(parts[0]).inserted else { throw Malformed(description: "two HELP for \(parts[0])") }
                } else {
                    guard page.types[parts[0]] == nil, ["counter", "gauge"].contains(parts[1]) else { throw Malformed(description: "bad TYPE: \(line)") }
                    guard parts[1] == "gauge" || parts[0].hasSuffix("_total") else { throw Malformed(description: "counter without _total: \(line)") }
                    page.types[parts[0]] = parts[1]
                }
                continue
            }
            guard !line.hasPrefix("#") else { continue }
            let sample = try parseSample(line)
            guard helped.contains(sample.name), page.types[sample.name] != nil else {
                throw Malformed(description: "\(sample.name) has no HELP or TYPE before its samples")
            }
            guard seen.insert(sample.description).inserted else { throw Malformed(description: "repeated: \(line)") }
            page.samples.append(sample)
        }
        guard !page.samples.isEmpty else { throw Malformed(description: "no samples") }
        guard helped == Set(page.types.keys) else { throw Malformed(description: "HELP without TYPE or TYPE without HELP") }
        return page
    }

    static func isName(_ text: some StringProtocol) -> Bool {
        func letter(_ scalar: Unicode.Scalar) -> Bool { scalar == "_" || scalar == ":" || ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) }
        guard let first = text.unicodeScalars.first, letter(first) else { return false }
        return text.unicodeScalars.allSatisfy { letter($0) || ("0"..."9").contains($0) }
    }

    /// `name{label="value",...} value`
    static func parseSample(_ line: String) throws -> Sample {
        let scalars = Array(line.unicodeScalars)
        var index = 0
        func fail(_ why: String) -> Malformed { Malformed(description: "\(why): \(line)") }
        func word() -> String {
            var out = ""
            while index < scalars.count, scalars[index] != "{", scalars[index] != " ", scalars[index] != "=", scalars[index] != "," {
                out.unicodeScalars.append(scalars[index])
                index += 1
            }
            return out
        }
        let name = word()
        guard isName(name) else { throw fail("bad metric name") }
        var labels: [String: String] = [:]
        if index < scalars.count, scalars[index] == "{" {
            index += 1
            while index < scalars.count, scalars[index] != "}" {
                let label = word()
                guard isName(label), index + 1 < scalars.count, scalars[index] == "=", scalars[index + 1] == "\"" else { throw fail("bad label") }
                index += 2
                var value = ""
                while true {
                    guard index < scalars.count else { throw fail("unterminated label value") }
                    let scalar = scalars[index]
                    index += 1
                    if scalar == "\"" { break }
                    guard scalar != "\n" else { throw fail("raw newline") }
                    if scalar == "\\" {
                        guard index < scalars.count else { throw fail("dangling escape") }
                        switch scalars[index] {
                        case "\\": value += "\\"
                        case "\"": value += "\""
                        case "n": value += "\n"
                        default: throw fail("bad escape")
                        }
                        index += 1
                    } else {
                        value.unicodeScalars.append(scalar)
                    }
                }
                guard labels.updateValue(value, forKey: label) == nil else { throw fail("repeated label") }
                if index < scalars.count, scalars[index] == "," { index += 1 }
            }
            guard index < scalars.count else { throw fail("unterminated labels") }
            index += 1
        }
        guard index < scalars.count, scalars[index] == " " else { throw fail("no value") }
        var text = ""
        text.unicodeScalars.append(contentsOf: scalars[(index + 1)...])
        let value: Double?
        switch text {
        case "+Inf": value = .infinity
        case "-Inf": value = -.infinity
        case "NaN": value = .nan
        default: value = text.contains(" ") || text.isEmpty ? nil : Double(text)
        }
        guard let value else { throw fail("value is not a number") }
        return Sample(name: name, labels: labels, value: value)
    }
}
