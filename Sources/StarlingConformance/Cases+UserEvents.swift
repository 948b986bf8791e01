import StarlingCore
import StarlingPOSIX

/// User events (issue 18, Protocol.md §3.6, §6.7).
extension Suite {
    /// §6.7: every copy of a USER_EVENT is acknowledged with a CONTROL_REPLY (status 0, the
    /// event's request_id), and the event is delivered once — one `user` event in a watch stream.
    func userEventOnce() -> Verdict {
        let watchID: UInt32 = 7201
        peer.send(peer.request(watchID, "watch"))
        guard peer.expect(1_000, { received in
            guard case .controlReply(let reply) = received.message.payload, reply.requestID == watchID else { return false }
            return (try? JSON.parse(String(decoding: reply.body, as: UTF8.self)))?["event"]?.stringValue == "watching"
        }) != nil else { return .fail("no \"watching\" reply") }
        let name = "conformance-\(System.randomUInt64() % 1_000_000)"
        let event = UserEvent(requestID: 7202, sequence: 1, stamp: peer.stamp + 1, name: name, payload: "once")
        var acks = 0
        var deliveries = 0
        for _ in 0..<2 {
            peer.send(.userEvent(event))
            _ = peer.expect(500) { received in
                guard case .controlReply(let reply) = received.message.payload else { return false }
                if reply.requestID == event.requestID, reply.status == .ok { acks += 1; return true }
                if reply.requestID == watchID, let json = try? JSON.parse(String(decoding: reply.body, as: UTF8.self)),
                   json["event"]?.stringValue == "user", json["name"]?.stringValue == name { deliveries += 1 }
                return false
            }
        }
        // Let a second (wrong) delivery reach the watcher if there is one.
        _ = peer.expect(200) { received in
            if case .controlReply(let reply) = received.message.payload, reply.requestID == watchID,
               let json = try? JSON.parse(String(decoding: reply.body, as: UTF8.self)), json["event"]?.stringValue == "user",
               json["name"]?.stringValue == name { deliveries += 1 }
            return false
        }
        guard acks == 2 else { return .fail("\(acks) acknowledgements of 2 copies") }
        return deliveries == 1 ? .pass : .fail("delivered \(deliveries) times (watch stream)")
    }
}
