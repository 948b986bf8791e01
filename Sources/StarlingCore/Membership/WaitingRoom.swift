/// Newcomers refused by the admission rate (Protocol.md §6.6), kept to be asked again: a peer
/// that heard of a member (its own datagram, or an entry about it) while the rate was spent
/// PINGs it later, one token each, and admits it when it answers. Without this a refusal was
/// forgotten: in a cold start of 2,000 each peer refused ~850 announcers in the first second,
/// and learned them again only from gossip, push-pull slices and its own probes, which left
/// some views incomplete a minute later.
///
/// Only a **ready** guest is asked: one this peer is a responder of (§6.1.3's ring), or one a
/// member vouched for by a unicast entry (piggyback, MEMBERS, HELLO_REPLY). A newcomer heard
/// only first-hand waits for such word for a while (``promote(arrivedBy:)``): so one forged
/// multicast makes its K responders PING the address it names at once, and the other peers
/// that heard it only after that wait, each at its own moment, not all in the same instant.
///
/// Bounded (`PeerConfig.Limits.admissionWaiting`): past the bound the oldest waiting id is
/// forgotten. A forged id never answers a PING in its name, so a flood of forged newcomers
/// fills this table, never the view, and costs the PINGs the rate allows.
struct WaitingRoom: Sendable {
    /// The answer a responder owes a newcomer's ANNOUNCE (§6.1.2), fixed when the ANNOUNCE came:
    /// its share of a view too large for one MEMBERS sequence (rank `index` of `of`), nil for
    /// the whole view. A responder that refused the ANNOUNCE for the rate sends this share
    /// later, whatever its grown ring says by then.
    struct OwedAnswer: Sendable {
        var share: (index: Int, of: Int)?
    }

    /// A newcomer waiting: where to ask it, the answer this peer owes it for its refused
    /// ANNOUNCE (it was one of the newcomer's responders then, §6.1.2), and whether it is ready.
    struct Guest: Sendable {
        var endpoint: Endpoint
        var owed: OwedAnswer?
        var ready: Bool
        /// When it came (a counter): the lists below name a guest by id and arrival, so an id
        /// forgotten and back is not taken for its earlier stay.
        var arrival: UInt64
    }

    /// A guest's stay, named by id and arrival.
    private struct Place: Sendable {
        var id: NodeID
        var arrival: UInt64
    }

    /// A place in the order of coming, with when it came (nanoseconds of the peer's clock).
    private struct Arrival: Sendable {
        var place: Place
        var at: UInt64
    }

    private(set) var guests: [NodeID: Guest] = [:]
    /// Every guest in the order it came, from `head` (those before it were forgotten); may
    /// name guests gone since, skipped and compacted away.
    private var order: [Arrival] = []
    private var head = 0
    /// Places before this one (and from `head`) have had their wait for a member's word.
    private var promoted = 0
    /// Ready guests in the order they became ready (asked newest first); may name gone ones.
    private var readyOrder: [Place] = []
    private(set) var readyCount = 0
    private var arrivals: UInt64 = 0

    var count: Int { guests.count }
    /// Entries of both lists, gone guests' places included (kept within about twice the guests).
    var placesHeld: Int { order.count - head + readyOrder.count }
    var isEmpty: Bool { guests.isEmpty }

    /// Adds the newcomer `id` reachable at `endpoint`, or updates it (its address, and ready
    /// once `ready`). Returns true when the oldest waiting id was forgotten to make room.
    mutating func add(_ id: NodeID, at endpoint: Endpoint, ready: Bool, now: UInt64, limit: Int) -> Bool {
        if guests[id] != nil {
            guests[id]?.endpoint = endpoint
            if ready { makeReady(id) }
            return false
        }
        arrivals &+= 1
        guests[id] = Guest(endpoint: endpoint, ready: false, arrival: arrivals)
        order.append(Arrival(place: Place(id: id, arrival: arrivals), at: now))
        if ready { makeReady(id) }
        var forgot = false
        while guests.count > max(1, limit), head < order.count {
            let oldest = order[head].place
            head += 1
            if oldest.id != id, isCurrent(oldest) {
                remove(oldest.id)
                forgot = true
            }
        }
        promoted = max(promoted, head)
        compact()
        return forgot
    }

    /// Makes ready the guests that came by `time` and are still waiting for a member's word.
    mutating func promote(arrivedBy time: UInt64) {
        promoted = max(promoted, head)
        while promoted < order.count, order[promoted].at <= time {
            if isCurrent(order[promoted].place) { makeReady(order[promoted].place.id) }
            promoted += 1
        }
    }

    /// Makes a waiting guest ready to be asked (a member vouched for it, or it owes a view).
    mutating func makeReady(_ id: NodeID) {
        guard let guest = guests[id], !guest.ready else { return }
        guests[id]?.ready = true
        readyCount += 1
        readyOrder.append(Place(id: id, arrival: guest.arrival))
    }

    /// Notes the answer this peer owes the waiting `id` for the ANNOUNCE it refused.
    mutating func noteOwed(_ answer: OwedAnswer, to id: NodeID) {
        guests[id]?.owed = answer
    }

    /// The guest `id` entered the view by other means: it leaves, unless this peer still owes
    /// it the answer to its ANNOUNCE (then it stays, ready, to be asked for it at no token).
    mutating func admitted(_ id: NodeID, owesView: Bool) {
        if owesView { makeReady(id) } else { leave(id) }
    }

    /// The guest `id` is owed nothing more (its ANNOUNCE was just answered): it leaves.
    mutating func leave(_ id: NodeID) {
        remove(id)
        compact()
    }

    /// Takes up to `limit` ready guests, newest first, dropping those `skip` says are not worth
    /// a PING any more. Newest first: after a flood of forged ids the real newcomers that came
    /// since are asked first, not after the flood's backlog.
    mutating func take(_ limit: Int, skip: (NodeID, Guest) -> Bool) -> [(id: NodeID, guest: Guest)] {
        var taken: [(id: NodeID, guest: Guest)] = []
        while taken.count < limit, let place = readyOrder.popLast() {
            guard isCurrent(place), let guest = guests[place.id] else { continue }
            remove(place.id)
            if !skip(place.id, guest) { taken.append((place.id, guest)) }
        }
        compact()
        return taken
    }

    private func isCurrent(_ place: Place) -> Bool { guests[place.id]?.arrival == place.arrival }

    private mutating func remove(_ id: NodeID) {
        guard let guest = guests.removeValue(forKey: id) else { return }
        if guest.ready { readyCount -= 1 }
    }

    /// Drops the places of guests gone, so that both lists stay within about twice the guests
    /// (a steady trickle of guests asked and gone would otherwise grow them for ever), and
    /// the tables once empty (a flood's worth of capacity is not kept).
    private mutating func compact() {
        if guests.isEmpty {
            if !order.isEmpty || order.capacity > 0 || !readyOrder.isEmpty { self = WaitingRoom() }
            return
        }
        if order.count - head > 2 * guests.count + 64 {
            var kept: [Arrival] = []
            var keptPromoted = 0
            for index in head..<order.count where isCurrent(order[index].place) {
                if index < promoted { keptPromoted += 1 }
                kept.append(order[index])
            }
            (order, head, promoted) = (kept, 0, keptPromoted)
        } else if head > 64, head * 2 > order.count {
            order.removeFirst(head)
            promoted -= head
            head = 0
        }
        if readyOrder.count > 2 * readyCount + 64 {
            readyOrder = readyOrder.filter { isCurrent($0) }
        }
    }
}
