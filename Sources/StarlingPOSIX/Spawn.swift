@preconcurrency import Glibc

// Shell children that read what this process writes to them: the agent's event handlers
// (`--on-event`, issue 18). The calls themselves are in the `Sys` extension at the end, beside
// the ones of Syscalls.swift, with the same conventions (typed Errno, EINTR retried, close never
// retried).

/// A `/bin/sh -c COMMAND` child in a process group of its own, with its standard input connected
/// to ``input``.
public struct ShellChild: Sendable {
    /// The shell's process id, which is also its process group's id.
    public let pid: Int32
    /// This process's end of the child's standard input: non-blocking and close-on-exec. Write
    /// with ``System/sendInput(_:_:)``, close with ``System/close(_:)`` (the child then reads
    /// the end of its input).
    public let input: Int32
}

extension System {
    /// Starts `/bin/sh -c command` in a new process group. Its standard input is one end of an
    /// AF_UNIX stream socket pair, not a pipe: the pair is created close-on-exec atomically
    /// (`SOCK_CLOEXEC`; Glibc's module has no `pipe2`, and `pipe` + `fcntl` would let a child
    /// spawned meanwhile by another thread inherit it), and writes to it use `MSG_NOSIGNAL`, so a
    /// child that exits without reading is EPIPE, never a SIGPIPE for an embedder that does not
    /// ignore it. Standard output and error are this process's standard error, or /dev/null
    /// with `discardOutput`. The child gets this process's environment less `STARLING_*`,
    /// `NOTIFY_SOCKET` and `WATCHDOG_*`, plus `environment`; every signal at its default action
    /// and none blocked. Descriptors of this process are not inherited when close-on-exec, as
    /// every one Starling opens is.
    public static func spawnShell(_ command: String, environment: [String: String], discardOutput: Bool = false) throws(Errno) -> ShellChild {
        let (ours, theirs) = try Sys.socketPair()
        do throws(Errno) {
            // Only our end is non-blocking: the child reads its standard input as usual.
            try Sys.setNonBlockingCloseOnExec(ours)
            let pid = try Sys.spawnShell(command, stdin: theirs, discardOutput: discardOutput, environment: environment)
            Sys.close(theirs)
            return ShellChild(pid: pid, input: ours)
        } catch {
            Sys.close(ours)
            Sys.close(theirs)
            throw error
        }
    }

    /// Writes what the child's input takes now: the count written, nil when it takes nothing
    /// yet (poll ``ShellChild/input`` for writing). EPIPE or ECONNRESET: the child closed it.
    public static func sendInput(_ fd: Int32, _ bytes: ArraySlice<UInt8>) throws(Errno) -> Int? {
        try Sys.typed { try bytes.withUnsafeBytes { try Sys.sendStream(fd, $0) } }
    }

    /// Sends `signal` to the process group led by `leader` (a ``ShellChild``'s pid); a group
    /// already gone is not an error. Call it only while the leader is not yet reaped: until
    /// then its pid, and so the group id, cannot be reused by another process.
    public static func signalGroup(_ leader: Int32, _ signal: Int32) {
        // kill(0) is this process's own group and kill(-1) every process: never those.
        precondition(leader > 1, "process group \(leader) is not a child's")
        try? Sys.kill(-leader, signal)
    }
}

extension Sys {
    /// An AF_UNIX stream socket pair, both ends close-on-exec from the start.
    static func socketPair() throws(Errno) -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        _ = try retrying("socketpair") {
            fds.withUnsafeMutableBufferPointer {
                Glibc.socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, $0.baseAddress)
            }
        }
        return (fds[0], fds[1])
    }

    /// Descriptors from 3 up that are open without close-on-exec, from /proc/self/fd; none when
    /// /proc cannot be read (then close-on-exec alone keeps descriptors from a child).
    static func inheritableDescriptors() -> [Int32] {
        guard let directory = opendir("/proc/self/fd") else { return [] }
        defer { closedir(directory) }
        let own = dirfd(directory)
        var found: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let fd = Int32(name), fd > 2, fd != own else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0 && flags & FD_CLOEXEC == 0 { found.append(fd) }
        }
        return found
    }

    /// posix_spawn of `/bin/sh -c command`: `stdin` becomes descriptor 0 (dup2 clears its
    /// close-on-exec in the child only), descriptors 1 and 2 go to this process's 2 or to
    /// /dev/null, and the child leads a new process group so a time-out can end the whole
    /// command, pipelines included. posix_spawn is not retried: it reports exec failures.
    static func spawnShell(_ command: String, stdin: Int32, discardOutput: Bool, environment: [String: String]) throws(Errno) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Descriptors this process inherited without close-on-exec (its parent's, an embedder's)
        // are closed in the child too; glibc ignores one closed meanwhile by another thread.
        for fd in inheritableDescriptors() where fd != stdin { posix_spawn_file_actions_addclose(&actions, fd) }
        posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        if discardOutput {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 2, 1)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // No signal blocked, none ignored (the agent ignores SIGPIPE; a handler's pipeline must not).
        let signals = resetSignals(&attributes)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, signals | Int16(POSIX_SPAWN_SETPGROUP))
        let path = "/bin/sh"
        let words: [String] = [path, "-c", command]
        let argv = words.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let envp = mergedEnvironment(environment).map { strdup($0) } + [nil]
        defer { for pointer in envp { free(pointer) } }
        #if DEBUG
        if let code = takeInjected("posix_spawn") { throw Errno(code, "spawn /bin/sh") }
        #endif
        var pid: pid_t = 0
        let code = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard code == 0 else { throw Errno(code, "spawn /bin/sh") }
        return pid
    }
}
