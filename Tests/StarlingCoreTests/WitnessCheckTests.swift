@testable import StarlingCore
import XCTest

/// Protocol.md §6.1.6: a witness checks a suspect once per suspicion, and its failed check
/// confirms that suspicion, by CHANGE, once.
final class WitnessCheckTests: XCTestCase {
    let ms = PeerHarness.ms

    /// A check started for one suspicion is not the verdict on a newer one: the member refuted
    /// and was suspected again before the first check's verdict was due. The newer suspicion
    /// has its own check, and only that one confirms it.
    func testAStaleCheckDoesNotConfirmANewerSuspicion() throws {
        var (h, fakes) = PeerHarness.cluster()
        let (subject, teller) = try h.pick(among: fakes, witness: true)
        h.change([h.entry(subject, .suspect)], from: teller)
        XCTAssertEqual(h.pings.filter { $0.target == subject }.count, 1, "the witness checks")
        let first = try XCTUnwrap(checkDue(of: subject, in: h))
        h.advance((first - h.now) / 2, silent: [subject])
        // It refutes, and is accused again by the same teller (so the same witnesses).
        h.receive(.change([h.entry(subject, .alive, 1)]), from: subject, name: h.name(of: subject), incarnation: 1, port: h.port(of: subject))
        XCTAssertEqual(h.peer.members[subject]?.status, .alive)
        h.change([h.entry(subject, .suspect, 1)], from: teller)
        XCTAssertEqual(h.pings.filter { $0.target == subject }.count, 2, "the newer suspicion is checked anew")
        let second = try XCTUnwrap(checkDue(of: subject, in: h))
        XCTAssertGreaterThan(second, first)
        // The first check's verdict falls due, the second's not yet.
        h.advance(first + 1 - h.now, silent: [subject])
        XCTAssertEqual(h.peer.members[subject]?.status, .suspect)
        XCTAssertEqual(h.peer.suspicions[subject]?.suspicion.confirmers.contains(h.peer.config.id), false,
            "the check made before the refutation does not confirm the suspicion after it")
        XCTAssertEqual(h.suspicionsSent(about: subject), [], "nor multicasts about it")
        h.advance(second + 1 - h.now, silent: [subject])
        XCTAssertEqual(h.peer.suspicions[subject]?.suspicion.confirmers.contains(h.peer.config.id), true)
        XCTAssertEqual(h.suspicionsSent(about: subject), [1], "the newer check confirms, once")
    }

    /// When the verdict of the latest check of `id` is due.
    func checkDue(of id: NodeID, in h: PeerHarness) -> UInt64? {
        h.peer.suspicions[id]?.check.flatMap { h.peer.membership.relays[$0]?.verdictAt }
    }

    /// A peer whose own probe confirmed a suspicion (multicast) and which then turns out to be
    /// a witness of it checks the suspect, but does not confirm a second time.
    func testAWitnessThatConfirmedAsAProberDoesNotConfirmAgain() throws {
        // A long maximum timeout: the hearsay suspicion must not run out before the probe.
        var (h, fakes) = PeerHarness.cluster { $0.suspicionBeta = 100 }
        let (subject, teller) = try h.pick(among: fakes, witness: true)
        h.ping(from: teller, name: h.name(of: teller), gossip: [h.entry(subject, .suspect)], port: h.port(of: teller))
        XCTAssertEqual(h.peer.members[subject]?.status, .suspect, "hearsay: no accuser, no check")
        // Round robin over eight members: the subject is probed within two rounds.
        for _ in 0..<300 where h.suspicionsSent(about: subject).isEmpty { h.advance(10 * ms, silent: [subject]) }
        XCTAssertEqual(h.suspicionsSent(about: subject), [0], "its failed probe confirms, by CHANGE")
        let pingsBefore = h.pings.filter { $0.target == subject }.count
        h.change([h.entry(subject, .suspect)], from: teller)
        XCTAssertEqual(h.pings.filter { $0.target == subject }.count, pingsBefore + 1, "as a witness it checks")
        h.advance(200 * ms, silent: [subject])
        XCTAssertEqual(h.suspicionsSent(about: subject), [0], "its confirmation went out once")
    }
}

/// Witnesses and checks (§6.1.3, §6.1.6).
extension PeerHarness {
    /// A peer with eight fake members, all alive at incarnation 0, nothing sent yet.
    static func cluster(_ configure: (inout PeerConfig) -> Void = { _ in }) -> (PeerHarness, [NodeID]) {
        var h = PeerHarness(configure: configure)
        h.start()
        let fakes = h.join(8)
        h.clearSent()
        return (h, fakes)
    }

    /// A subject and a teller among `fakes` such that this peer is (or is not) one of the
    /// subject's witnesses when the teller is its accuser (§6.1.6).
    func pick(among fakes: [NodeID], witness: Bool) throws -> (subject: NodeID, teller: NodeID) {
        for subject in fakes {
            for teller in fakes where teller != subject {
                if peer.membership.witnesses(of: subject, accuser: teller).contains(peer.config.id) == witness { return (subject, teller) }
            }
        }
        throw XCTSkip("no pair of fakes makes this peer \(witness ? "a" : "no") witness")
    }

    /// The incarnations of the CHANGE(suspect)s about `id` the peer sent.
    func suspicionsSent(about id: NodeID) -> [UInt32] {
        changes.flatMap(\.0).filter { $0.id == id && $0.status == .suspect }.map(\.incarnation)
    }
}
