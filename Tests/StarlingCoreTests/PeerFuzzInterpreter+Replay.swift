// A model of the replay window of Protocol.md §7.3 for the stateful Peer fuzz target: with a key,
// an unseen sequence in the window H − 255 … H (H the highest accepted) or above it is accepted,
// a seen one or one below the window is dropped as `replay` (issue 14 item 10 made the spec say
// exactly which 256). The model assumes the order of §5.1: decode (tag included), cluster, own
// id, then the window, before anything else can drop a datagram.
#if canImport(StarlingCore)
@testable import StarlingCore
#endif

/// What a receiver should hold for one sender.
struct FuzzReplayWindow {
    var highest: UInt64 = 0
    var accepted: Set<UInt64> = []

    /// True: must be accepted; false: must be dropped as a replay.
    func admits(_ sequence: UInt64) -> Bool {
        if sequence > highest { return true }
        if accepted.contains(sequence) { return false }
        return highest - sequence <= 255
    }

    mutating func record(_ sequence: UInt64) {
        highest = max(highest, sequence)
        accepted.insert(sequence)
        if accepted.count > 600 { accepted = accepted.filter { highest - $0 <= 255 } }
    }
}

extension PeerFuzzInterpreter {

    /// A sequence for `sender`: mostly the next one, sometimes an edge value or one at the edge of
    /// the window below the highest sent so far.
    mutating func sequence(_ input: inout FuzzInput, for sender: NodeID) -> UInt64 {
        let top = sequences[sender] ?? 0
        let chosen: UInt64
        switch input.below(16) {
        case 0: chosen = input.integer(UInt64.self)
        case 1: chosen = top &- 257 &+ UInt64(input.byte() % 4)  // H − 257 … H − 254
        case 2: chosen = top &- UInt64(input.byte())
        default: chosen = top &+ 1
        }
        sequences[sender] = max(top, chosen)
        return chosen
    }

    mutating func nextSequence(_ sender: NodeID) -> UInt64 {
        let next = (sequences[sender] ?? 0) &+ 1
        sequences[sender] = next
        return next
    }

    /// Whether the model expects `message` to pass the replay check at `slot`; nil when the peer
    /// has no key, the datagram stops earlier, or the model lost track of the sender.
    func replayExpectation(_ message: Message, at slot: Int) -> Bool? {
        let peer = slots[slot].peer
        guard !peer.config.keys.isEmpty, !peer.stopped, !slots[slot].replayModelOff,
            message.header.sender != peer.config.id, !slots[slot].unmodelled.contains(message.header.sender),
            message.header.cluster.utf8.elementsEqual(peer.config.cluster.utf8)
        else { return nil }
        return slots[slot].windows[message.header.sender]?.admits(message.header.sequence) ?? true
    }

    /// Checks the peer's verdict against the model and records an accepted sequence.
    mutating func judgeReplay(_ message: Message, expected: Bool?, droppedAsReplay: Bool, at slot: Int) {
        let sender = message.header.sender
        let sequence = message.header.sequence
        // Once the peer may have forgotten a sender to make room (§7.3, §6.6), the model stops.
        let held = slots[slot].windows.count + slots[slot].unmodelled.count
        if held + 1 >= slots[slot].peer.config.limits.replayWindows { slots[slot].replayModelOff = true }
        guard let expected, !slots[slot].replayModelOff else {
            // Not modelled: whatever the peer did to this sender's window is unknown from now on.
            if !slots[slot].peer.config.keys.isEmpty { slots[slot].unmodelled.insert(sender) }
            return
        }
        let highest = slots[slot].windows[sender]?.highest ?? 0
        if expected, droppedAsReplay {
            return fail("replay_window: peer \(slot) dropped unseen sequence \(sequence) (highest \(highest)) as a replay (issue 14 item 10, §7.3: H − 255 … H)")
        }
        if !expected, !droppedAsReplay {
            return fail("replay_accepted: peer \(slot) accepted sequence \(sequence) again or below its window (highest \(highest))")
        }
        guard !droppedAsReplay else { return }
        slots[slot].windows[sender, default: FuzzReplayWindow()].record(sequence)
    }
}
