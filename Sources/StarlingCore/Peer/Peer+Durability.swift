/// The shell's hooks for durable state (Protocol.md §6.3.5). The core does no I/O: the shell
/// tells it when revokes cannot be kept, and takes the changes it must append to its log.
extension Peer {
    /// Sets (a message) or clears (nil) the durability error. While it is set, `revoke` requests
    /// are answered with status `error` and nothing is stored: an agent does not acknowledge a
    /// revoke it cannot keep. Setting it also forgets the reply bodies cached for re-requests
    /// (§6.5), so an acknowledgement the shell withheld is never sent by a re-request.
    public mutating func setDurabilityError(_ message: String?) {
        if message != nil, durabilityError == nil { responder.dropKeptReplies() }
        durabilityError = message
    }

    /// Starts recording changes of the revoked set for ``takeRevokedChanges()``. Entries given
    /// at init (loaded from disk) are not recorded.
    public mutating func startRevokedJournal() { sync.revoked.startJournal() }

    /// Entries added to (or moved later in) the revoked set since the last call; `complete` is
    /// false when more changed than the journal holds (the set's bound) or no journal was started.
    public mutating func takeRevokedChanges() -> RevokedChanges { sync.revoked.takeJournal() }
}
