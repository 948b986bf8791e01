import Starling
import StarlingCore
import StarlingPOSIX

extension ClusterScenarios {
    /// receive: CPU a running agent spends per datagram it receives, kernel and wake-ups
    /// included (what the codec figures leave out). Three agents on loopback; a fake peer (a
    /// socket of this process on 127.0.0.1) sends PINGs, each with the next sequence number, to
    /// one agent's unicast port: `floodRounds` times `flood` datagrams as fast as it
    /// can (at most 10 s each), then one per millisecond for `pacedSeconds`. Per phase, the
    /// agent's utime + stime (/proc/<pid>/stat) divided by the datagrams it counted in (`stats`
    /// datagrams_in, its ordinary cluster traffic included).
    func receive(flood: Int, floodRounds: Int, pacedSeconds: UInt64) throws {
        let cluster = try AgentCluster(binary: binary)
        let floodFigure = "agent CPU per received datagram, flood"
        guard try cluster.startConverged(3, prefix: "r") else {
            return report.summary("receive", floodFigure, .failing("cluster did not converge within 30 s"), "µs", n: 3)
        }
        // Loopback only: the target's address is checked, never taken on trust.
        guard let pid = cluster.pid("r0"),
              let text = cluster.request("stats", target: "r0", expected: 1).replies.first?.json["unicast"]?.stringValue,
              let target = Endpoint(parsing: text), target.ip.ipv4.map({ $0 >> 24 == 127 }) == true else {
            return report.summary("receive", floodFigure, .failing("no loopback unicast address from r0's stats"), "µs", n: 3)
        }
        var peer = try FakePings(to: target)
        var floods = Samples()
        var sent = 0.0
        var counted = 0.0
        var dropped = 0.0
        var sendSeconds = 0.0
        var fewest = Double.infinity
        for _ in 0..<floodRounds {
            let phase = measure(cluster, pid) {
                let start = System.now().nanos
                var count = 0
                while count < flood && System.now().nanos < start + .millis(10_000) {
                    peer.send()
                    count += 1
                }
                sendSeconds += Double(System.now().nanos - start) / 1e9
            }
            phase.record(into: &floods)
            sent += Double(peer.takeSent())
            counted += phase.datagrams
            fewest = min(fewest, phase.datagrams)
            dropped += phase.drops
        }
        report.summary("receive", floodFigure, floods, "µs", n: 3)
        report.add("receive", "flood: datagrams sent (all rounds)", sent, "datagrams", n: 3)
        report.add("receive", "flood: send rate", sendSeconds > 0 ? sent / sendSeconds : 0, "/s", n: 3)
        report.add("receive", "flood: datagrams the agent counted in (its cluster traffic included)", counted, "datagrams", n: 3)
        report.add("receive", "flood: of those, dropped by the agent's checks", dropped, "datagrams", n: 3)
        report.add("receive", "flood: resolution (one 10 ms CPU tick over a round's datagrams)", fewest > 0 && fewest.isFinite ? 10_000 / fewest : 0, "µs", n: 3)

        // One at a time, each wakes the agent. Its idle CPU over as long a time is measured
        // first, then subtracted for the second figure.
        let idle = measure(cluster, pid) { System.sleep(millis: pacedSeconds * 1_000) }
        let paced = measure(cluster, pid) {
            let end = System.now().nanos + pacedSeconds * 1_000_000_000
            while System.now().nanos < end {
                peer.send()
                System.sleep(millis: 1)
            }
        }
        var gross = Samples()
        paced.record(into: &gross)
        var net = Samples()
        Phase(cpuMillis: paced.cpuMillis - idle.cpuMillis, datagrams: paced.datagrams - idle.datagrams, failure: paced.failure ?? idle.failure).record(into: &net)
        report.summary("receive", "agent CPU per received datagram, one sent per ms", gross, "µs", n: 3)
        report.summary("receive", "agent CPU per received datagram, one sent per ms, its idle CPU subtracted", net, "µs", n: 3)
        report.add("receive", "one per ms: datagrams the agent counted in", paced.datagrams, "datagrams", n: 3)
        report.add("receive", "one per ms: the agent's idle CPU over as long", idle.cpuMillis, "ms", n: 3)
        report.add("receive", "one per ms: resolution (one 10 ms CPU tick over those datagrams)", paced.datagrams > 0 ? 10_000 / paced.datagrams : 0, "µs", n: 3)
        cluster.stopAll()
    }

    /// What one agent did while `body` ran, read from /proc and its `stats`. The agent is given
    /// 300 ms afterwards to drain its socket before the second reading.
    private func measure(_ cluster: AgentCluster, _ pid: Int32, _ body: () -> Void) -> Phase {
        func reading() -> (datagrams: Double, drops: Double)? {
            guard let stats = cluster.request("stats", target: "r0", expected: 1).replies.first?.json,
                  let datagrams = stats["datagrams_in"]?.numberValue else { return nil }
            var drops = 0.0
            if case .object(let reasons)? = stats["drops"] { drops = reasons.reduce(0) { $0 + ($1.1.numberValue ?? 0) } }
            return (datagrams, drops)
        }
        let before = reading()
        let ticks = ProcessInfo.cpuTicks(pid)
        body()
        System.sleep(millis: 300)
        let cpuMillis = (ProcessInfo.cpuTicks(pid) - ticks) * 10
        guard let before, let after = reading() else { return Phase(failure: "missing reply (stats)") }
        return Phase(cpuMillis: cpuMillis, datagrams: after.datagrams - before.datagrams, drops: after.drops - before.drops)
    }

    private struct Phase {
        var cpuMillis = 0.0
        var datagrams = 0.0
        var drops = 0.0
        var failure: String?

        func record(into samples: inout Samples) {
            if let failure { return samples.fail(failure) }
            guard datagrams > 0 else { return samples.fail("the agent counted no datagram in") }
            samples.add(cpuMillis * 1_000 / datagrams)
        }
    }
}

/// A fake member that sends PINGs, each with the next sequence number and stamp, from its own
/// loopback socket. Their target is an id that is not the agent's (a probe meant for an earlier
/// life of it), so the agent decodes, admits and merges each as it would any PING, but answers
/// none: the figure stays the cost of receiving, as it was with version 1's heartbeats. The
/// fake answers the PINGs it is sent itself (drained while it sends), so that the agents keep
/// it alive as they kept a member that sent heartbeats.
private struct FakePings {
    let socket: UDPSocket
    let target: Endpoint
    let codec = Codec()
    var header: Header
    let ping = Payload.ping(Ping(probeID: 1, target: NodeID(high: 0, low: 1), revoked: RevokedSet().digest))
    private var sent = 0
    private var buffer = [UInt8](repeating: 0, count: Limits.maxDatagram)

    init(to target: Endpoint) throws {
        socket = try UDPSocket.unicast(interface: 0x7F00_0001, port: 0)
        self.target = target
        header = Header(sequence: 0, stamp: 0, sender: NodeID(high: System.randomUInt64(), low: System.randomUInt64()), incarnation: 0,
            replyPort: socket.local.port, cluster: "starling", name: "bench-pings")
    }

    mutating func send() {
        answerPings()
        header.sequence += 1
        header.stamp += 1
        guard let bytes = try? codec.encode(Message(header: header, payload: ping)) else { return }
        if (try? socket.send(bytes, to: target)) == true { sent += 1 }
    }

    /// Answers up to 16 waiting PINGs addressed to this fake with an ACK; only to loopback
    /// senders, so nothing leaves the host.
    private mutating func answerPings() {
        let socket = socket
        for _ in 0..<16 {
            guard let (count, from) = buffer.withUnsafeMutableBytes({ (try? socket.receive(into: $0)) ?? nil }) else { return }
            guard count <= buffer.count, from.ip.ipv4.map({ $0 >> 24 == 127 }) == true,
                  let message = try? codec.decode(Array(buffer[0..<count])),
                  case .ping(let probe) = message.payload, probe.target == header.sender else { continue }
            header.sequence += 1
            header.stamp = max(header.stamp, message.header.stamp) + 1
            let ack = Payload.ack(Ping(probeID: probe.probeID, target: header.sender, revoked: RevokedSet().digest))
            guard let bytes = try? codec.encode(Message(header: header, payload: ack)) else { continue }
            _ = try? socket.send(bytes, to: from.with(port: message.header.replyPort))
        }
    }

    /// PINGs the kernel accepted since the last call.
    mutating func takeSent() -> Int {
        defer { sent = 0 }
        return sent
    }
}
