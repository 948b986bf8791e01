import StarlingCore
import StarlingPOSIX

// The core and shell types an embedder names, reachable from `import Starling` alone. The rest
// of the core (Peer, its events and actions, the codec) stays behind the agent.

/// A node's 128-bit random id, fixed for the life of one agent process.
public typealias NodeID = StarlingCore.NodeID
/// An IPv4 or IPv6 address and port (`Endpoint.parse` reads `a.b.c.d:port` and `[v6%zone]:port`).
public typealias Endpoint = StarlingCore.Endpoint
/// An IPv4 or IPv6 address, 16 bytes; `description` is RFC 5952 text for IPv6.
public typealias IPAddress = StarlingCore.IPAddress
/// IPv4 or IPv6: one cluster is one family, its group's (Protocol.md §2.5).
public typealias AddressFamily = StarlingCore.AddressFamily
/// Why address text was refused.
public typealias AddressError = StarlingCore.AddressError
/// A cluster key (see `starling keygen`).
public typealias AuthKey = StarlingCore.AuthKey
/// alive, suspect, dead or left (Protocol.md §6.1).
public typealias MemberStatus = StarlingCore.MemberStatus
/// How an agent answered a control request.
public typealias ControlStatus = StarlingCore.ControlStatus
/// A request for a command registered with ``Agent/handle(_:timeout:_:)``.
public typealias CommandRequest = StarlingCore.CommandRequest
/// A JSON value: what a command handler returns (literals work) and what replies carry.
public typealias JSON = StarlingCore.JSON
/// Why collecting replies stopped.
public typealias RequestEnd = StarlingCore.RequestEnd
/// How long and how many replies a control request collects (the core's settings).
@_spi(Testing) public typealias RequestOptions = StarlingCore.RequestOptions
/// A system call's error number and the call that failed.
public typealias Errno = StarlingPOSIX.Errno
/// The interface an agent joined the group on.
public typealias Interface = StarlingPOSIX.Interface
/// Fault injection settings, for tests and benchmarks.
@_spi(Testing) public typealias FaultSettings = StarlingPOSIX.FaultSettings
