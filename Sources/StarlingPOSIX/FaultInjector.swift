import StarlingCore

/// Loss, delay and partitions on loopback (no netem here): applied by the agent in its send and
/// receive path. Off by default.
public struct FaultSettings: Sendable, Equatable {
    /// Probability of dropping each received datagram.
    public var receiveDropRate: Double = 0
    /// Probability of dropping each sent datagram.
    public var sendDropRate: Double = 0
    /// Added delay for every sent datagram, in nanoseconds.
    public var delayNanos: UInt64 = 0
    /// Addresses (any port when the port is 0) that are neither sent to nor heard from.
    public var blocked: Set<Endpoint> = []

    public init(receiveDropRate: Double = 0, sendDropRate: Double = 0, delayNanos: UInt64 = 0, blocked: Set<Endpoint> = []) {
        self.receiveDropRate = receiveDropRate
        self.sendDropRate = sendDropRate
        self.delayNanos = delayNanos
        self.blocked = blocked
    }

    public var isActive: Bool { receiveDropRate > 0 || sendDropRate > 0 || delayNanos > 0 || !blocked.isEmpty }
}

/// Applies ``FaultSettings`` with its own seeded generator.
public struct FaultInjector: Sendable {
    public var settings: FaultSettings
    private var rng: SplitMix64
    public private(set) var dropped: UInt64 = 0

    public init(settings: FaultSettings = FaultSettings(), seed: UInt64) {
        self.settings = settings
        self.rng = SplitMix64(seed: seed)
    }

    private func isBlocked(_ endpoint: Endpoint) -> Bool {
        settings.blocked.contains(endpoint) || settings.blocked.contains(endpoint.with(port: 0))
    }

    private mutating func chance(_ rate: Double) -> Bool {
        rate > 0 && Double(rng.next() >> 11) / Double(1 << 53) < rate
    }

    /// True when a datagram from `source` must be dropped on arrival.
    public mutating func dropIncoming(from source: Endpoint) -> Bool {
        let drop = isBlocked(source) || chance(settings.receiveDropRate)
        if drop { dropped += 1 }
        return drop
    }

    /// True when a datagram to `destination` (nil for the group) must be dropped on sending.
    public mutating func dropOutgoing(to destination: Endpoint?) -> Bool {
        let drop = destination.map(isBlocked) == true || chance(settings.sendDropRate)
        if drop { dropped += 1 }
        return drop
    }
}
