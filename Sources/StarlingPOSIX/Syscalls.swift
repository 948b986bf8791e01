@preconcurrency import Glibc
import Synchronization

/// Write end of the signal pipe, read by the async-signal-safe handler.
let signalPipe = Atomic<Int32>(-1)

#if DEBUG
/// Debug builds only: makes the next calls of a system call fail, so tests reach error paths
/// (a full socket buffer, a failing poll) on a real agent.
public enum SyscallFaults {
    /// The next `codes.count` calls of `name` (`sendto`, `poll`, `write`, ...) fail with these
    /// errno values, one each, in order. Process-wide: use it in a test with a single agent.
    public static func inject(_ name: String, _ codes: [Int32]) {
        Sys.injected.withLock { $0[name, default: []].append(contentsOf: codes) }
    }

    /// How many injected failures of `name` are still to come.
    public static func pending(_ name: String) -> Int { Sys.injected.withLock { $0[name]?.count ?? 0 } }

    public static func clear() { Sys.injected.withLock { $0.removeAll() } }
}
#endif

/// Every system call Starling makes goes through this file. Each wrapper retries EINTR (except
/// close, which must never be retried on Linux) and turns failure into a typed ``Errno``.
/// Debug builds let tests inject errors per call name to exercise those paths.
enum Sys {
    #if DEBUG
    /// Errors to return instead of calling, by call name (tests only).
    static let injected = Mutex<[String: [Int32]]>([:])

    static func takeInjected(_ name: String) -> Int32? {
        injected.withLock { queues in
            guard var queue = queues[name], !queue.isEmpty else { return nil }
            let code = queue.removeFirst()
            queues[name] = queue
            return code
        }
    }
    #endif

    /// Narrows an untyped `rethrows` call (the standard library's buffer accessors) back to Errno.
    static func typed<T>(_ body: () throws -> T) throws(Errno) -> T {
        do {
            return try body()
        } catch let error as Errno {
            throw error
        } catch {
            preconditionFailure("only Errno is thrown inside the shell: \(error)")
        }
    }

    /// Runs `body` until it stops failing with EINTR; -1 becomes a thrown Errno.
    @inline(__always)
    static func retrying<T: BinaryInteger>(_ name: String, _ body: () -> T) throws(Errno) -> T {
        while true {
            #if DEBUG
            if let code = takeInjected(name) {
                if code == EINTR { continue }
                throw Errno(code, name)
            }
            #endif
            let result = body()
            if result != -1 { return result }
            let code = errno
            if code == EINTR { continue }
            throw Errno(code, name)
        }
    }

    static func socket(_ domain: Int32, _ type: Int32) throws(Errno) -> Int32 {
        try retrying("socket") { Glibc.socket(domain, type | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0) }
    }

    static func setsockopt<T: BitwiseCopyable>(_ fd: Int32, _ level: Int32, _ option: Int32, _ value: T, _ name: String) throws(Errno) {
        var value = value
        _ = try retrying(name) { withUnsafeBytes(of: &value) { Glibc.setsockopt(fd, level, option, $0.baseAddress, socklen_t($0.count)) } }
    }

    /// setsockopt with an option value given as its bytes (C structs Swift does not see as
    /// bitwise-copyable, like ipv6_mreq with its union).
    static func setsockopt(_ fd: Int32, _ level: Int32, _ option: Int32, bytes: [UInt8], _ name: String) throws(Errno) {
        _ = try retrying(name) { bytes.withUnsafeBytes { Glibc.setsockopt(fd, level, option, $0.baseAddress, socklen_t($0.count)) } }
    }

    static func getsockoptInt(_ fd: Int32, _ level: Int32, _ option: Int32) throws(Errno) -> Int32 {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = try retrying("getsockopt") { Glibc.getsockopt(fd, level, option, &value, &length) }
        return value
    }

    static func bind(_ fd: Int32, _ address: SocketAddress) throws(Errno) {
        _ = try retrying("bind") { address.withPointer { Glibc.bind(fd, $0, $1) } }
    }

    static func getsockname(_ fd: Int32) throws(Errno) -> SocketAddress {
        var address = SocketAddress()
        _ = try retrying("getsockname") { address.fill { Glibc.getsockname(fd, $0, $1) } }
        return address
    }

    /// An interface's index by name (IPv6 joins groups and scopes link-local addresses by it);
    /// nil when there is no such interface.
    static func interfaceIndex(_ name: String) -> UInt32? {
        let index = if_nametoindex(name)
        return index == 0 ? nil : index
    }

    /// Sends one datagram; EAGAIN is returned as false (would block), not thrown.
    static func sendto(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, _ address: SocketAddress) throws(Errno) -> Bool {
        do throws(Errno) {
            _ = try retrying("sendto") {
                address.withPointer { Glibc.sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), $0, $1) }
            }
            return true
        } catch where error.rawValue == EAGAIN || error.rawValue == EWOULDBLOCK {
            return false
        }
    }

    /// Receives one datagram into `buffer`; nil when nothing is waiting. A datagram longer than
    /// the buffer is reported with its full length (MSG_TRUNC) so the caller can count it.
    static func recvfrom(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> (Int, SocketAddress)? {
        var address = SocketAddress()
        do throws(Errno) {
            let count = try retrying("recvfrom") {
                address.fill { Glibc.recvfrom(fd, buffer.baseAddress, buffer.count, Int32(MSG_TRUNC), $0, $1) }
            }
            return (count, address)
        } catch where error.rawValue == EAGAIN || error.rawValue == EWOULDBLOCK {
            return nil
        }
    }

    // MARK: TCP (the metrics endpoint)

    static func listen(_ fd: Int32, backlog: Int32) throws(Errno) {
        _ = try retrying("listen") { Glibc.listen(fd, backlog) }
    }

    /// Accepts one waiting connection, made non-blocking and close-on-exec (Glibc's module does
    /// not export accept4, and Linux does not pass O_NONBLOCK on); nil when none waits. A
    /// connection that failed while queued (ECONNABORTED, and the network errors Linux passes
    /// on from accept) is gone, not an error of the listener: also nil, the caller looks again.
    static func accept(_ fd: Int32) throws(Errno) -> (Int32, SocketAddress)? {
        var address = SocketAddress()
        do throws(Errno) {
            let client = try retrying("accept") { address.fill { Glibc.accept(fd, $0, $1) } }
            do throws(Errno) {
                try setNonBlockingCloseOnExec(client)
            } catch {
                close(client)
                throw error
            }
            return (client, address)
        } catch where [EAGAIN, EWOULDBLOCK, ECONNABORTED, EPROTO, ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH,
                       ENETUNREACH].contains(error.rawValue) {
            return nil
        }
    }

    /// Starts connecting a non-blocking socket: true when connected at once, false while it is
    /// in progress (poll for writability, then ``socketError(_:)`` tells how it ended).
    static func connect(_ fd: Int32, _ address: SocketAddress) throws(Errno) -> Bool {
        do throws(Errno) {
            _ = try retrying("connect") { address.withPointer { Glibc.connect(fd, $0, $1) } }
            return true
        } catch where error.rawValue == EINPROGRESS || error.rawValue == EALREADY {
            return false
        } catch where error.rawValue == EISCONN {
            // A retry after EINTR finds the first attempt done.
            return true
        }
    }

    /// The pending error of a socket (SO_ERROR): how a non-blocking connect ended; 0 when fine.
    static func socketError(_ fd: Int32) throws(Errno) -> Int32 {
        try getsockoptInt(fd, SOL_SOCKET, SO_ERROR)
    }

    /// Receives bytes from a stream: nil when none are waiting, 0 at the end of the stream.
    /// (No MSG_TRUNC, which on TCP would discard the bytes: see ``recv(_:_:)`` for datagrams.)
    static func recvStream(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int? {
        do throws(Errno) {
            return try retrying("recv") { Glibc.recv(fd, buffer.baseAddress, buffer.count, 0) }
        } catch where error.rawValue == EAGAIN || error.rawValue == EWOULDBLOCK {
            return nil
        }
    }

    /// Sends bytes on a stream, as many as the socket buffer takes: nil when it takes none now.
    /// MSG_NOSIGNAL: a peer that closed is EPIPE here, never a SIGPIPE for the process.
    static func sendStream(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) -> Int? {
        do throws(Errno) {
            return try retrying("send") { Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
        } catch where error.rawValue == EAGAIN || error.rawValue == EWOULDBLOCK {
            return nil
        }
    }

    /// Ends the sending direction (SHUT_WR): the peer reads the end of the stream.
    static func shutdownWriting(_ fd: Int32) throws(Errno) {
        _ = try retrying("shutdown") { Glibc.shutdown(fd, Int32(SHUT_WR)) }
    }

    /// Waits for readiness; EINTR counts as "nothing ready" so the caller re-reads its timers.
    static func poll(_ fds: inout [pollfd], timeoutMillis: Int32) throws(Errno) -> Int32 {
        let count = nfds_t(fds.count)
        do throws(Errno) {
            return try retryingOnce("poll") { fds.withUnsafeMutableBufferPointer { Glibc.poll($0.baseAddress, count, timeoutMillis) } }
        } catch where error.rawValue == EINTR {
            return 0
        }
    }

    /// Like ``retrying(_:_:)`` but hands EINTR back, for calls whose caller must recompute its
    /// arguments (a poll timeout) before trying again.
    static func retryingOnce<T: BinaryInteger>(_ name: String, _ body: () -> T) throws(Errno) -> T {
        #if DEBUG
        if let code = takeInjected(name) { throw Errno(code, name) }
        #endif
        let result = body()
        if result != -1 { return result }
        throw Errno(errno, name)
    }

    /// Closes once; never retried, because on Linux the descriptor is gone even after EINTR.
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// A non-blocking pipe: (read end, write end).
    static func pipe() throws(Errno) -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        _ = try retrying("pipe") { fds.withUnsafeMutableBufferPointer { Glibc.pipe($0.baseAddress) } }
        for fd in fds { try setNonBlockingCloseOnExec(fd) }
        return (fds[0], fds[1])
    }

    static func setNonBlockingCloseOnExec(_ fd: Int32) throws(Errno) {
        _ = try retrying("fcntl") { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        _ = try retrying("fcntl") { fcntl(fd, F_SETFD, FD_CLOEXEC) }
    }

    static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) -> Int {
        try retrying("write") { Glibc.write(fd, bytes.baseAddress, bytes.count) }
    }

    static func read(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try retrying("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0o600) throws(Errno) -> Int32 {
        try retrying("open \(path)") { Glibc.open(path, flags | O_CLOEXEC, mode) }
    }

    static func fsync(_ fd: Int32) throws(Errno) {
        _ = try retrying("fsync") { Glibc.fsync(fd) }
    }

    static func rename(_ from: String, _ to: String) throws(Errno) {
        _ = try retrying("rename \(from)") { Glibc.rename(from, to) }
    }

    static func mkdir(_ path: String) throws(Errno) {
        do throws(Errno) {
            _ = try retrying("mkdir \(path)") { Glibc.mkdir(path, 0o700) }
        } catch where error.rawValue == EEXIST {}
    }

    /// Removes a name; a symbolic link is removed itself, never followed. A missing name is
    /// not an error (the caller wanted it gone).
    static func unlink(_ path: String) throws(Errno) {
        do throws(Errno) {
            _ = try retrying("unlink \(path)") { Glibc.unlink(path) }
        } catch where error.rawValue == ENOENT {}
    }

    static func fstat(_ fd: Int32) throws(Errno) -> stat {
        var info = stat()
        _ = try retrying("fstat") { Glibc.fstat(fd, &info) }
        return info
    }

    static func clock(_ id: clockid_t) -> timespec {
        var spec = timespec()
        _ = clock_gettime(id, &spec)
        return spec
    }

    /// Tells the kernel that this process no longer needs `length` bytes at `address` mapped
    /// (MADV_DONTNEED). Only for pages that hold nothing private: they come back from the file.
    static func dropMapping(_ address: UInt, length: UInt) throws(Errno) {
        guard let pointer = UnsafeMutableRawPointer(bitPattern: address) else { throw Errno(EINVAL) }
        _ = try retrying("madvise") { Glibc.madvise(pointer, Int(length), MADV_DONTNEED) }
    }

    /// glibc's `mallopt(M_MMAP_THRESHOLD, bytes)`: blocks of `bytes` or more get mappings of
    /// their own. Looked up by name, as Swift's Glibc module does not import malloc.h; false
    /// when it is missing (another libc) or refuses the value. M_MMAP_THRESHOLD is -3 there.
    static func setMmapThreshold(_ bytes: Int32) -> Bool {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return false }
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        return unsafeBitCast(symbol, to: Mallopt.self)(-3, bytes) == 1
    }

    /// Replaces this process with a new run of its own executable, with the same arguments and
    /// `name=value` added to the environment. Returns only when that failed, with why.
    static func reexec(setting name: String, to value: String) -> Errno {
        guard setenv(name, value, 1) == 0 else { return Errno(errno, "setenv") }
        // The arguments as the kernel gave them, byte for byte, and null-terminated.
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        return Errno(errno, "execv")
    }

    /// Routes `signals` to a pipe, so the event loop sees them as readable input, and sets
    /// `ignored` to SIG_IGN. Returns the previous actions, for ``restoreSignals(_:)``.
    static func routeSignals(_ signals: [Int32], toPipe writeEnd: Int32, ignoring ignored: [Int32]) throws(Errno) -> [(Int32, sigaction)] {
        signalPipe.store(writeEnd, ordering: .releasing)
        var saved: [(Int32, sigaction)] = []
        for signal in signals + ignored {
            var action = sigaction()
            if ignored.contains(signal) {
                action.__sigaction_handler.sa_handler = SIG_IGN
            } else {
                // Async-signal-safe: an atomic load and write(2). errno is saved and restored so
                // the interrupted code never sees the handler's write fail in its place.
                action.__sigaction_handler.sa_handler = { number in
                    let savedErrno = errno
                    var byte = UInt8(truncatingIfNeeded: number)
                    let fd = signalPipe.load(ordering: .acquiring)
                    if fd >= 0 { _ = Glibc.write(fd, &byte, 1) }
                    errno = savedErrno
                }
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            var previous = sigaction()
            do throws(Errno) {
                _ = try retrying("sigaction") { sigaction(signal, &action, &previous) }
            } catch {
                restoreSignals(saved)
                throw error
            }
            saved.append((signal, previous))
        }
        return saved
    }

    /// Puts back what ``routeSignals(_:toPipe:ignoring:)`` replaced and stops writing to its pipe.
    static func restoreSignals(_ saved: [(Int32, sigaction)]) {
        for (signal, previous) in saved.reversed() {
            var previous = previous
            _ = sigaction(signal, &previous, nil)
        }
        signalPipe.store(-1, ordering: .releasing)
    }

    static func urandom(_ buffer: UnsafeMutableRawBufferPointer) throws(Errno) {
        let fd = try open("/dev/urandom", O_RDONLY)
        defer { close(fd) }
        var filled = 0
        while filled < buffer.count {
            let count = try read(fd, UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
            if count <= 0 { throw Errno(EIO, "read /dev/urandom") }
            filled += count
        }
    }

    static func kill(_ pid: pid_t, _ signal: Int32) throws(Errno) {
        _ = try retrying("kill") { Glibc.kill(pid, signal) }
    }

    static func waitpid(_ pid: pid_t, _ options: Int32) throws(Errno) -> (pid_t, Int32) {
        var status: Int32 = 0
        let result = try retrying("waitpid") { Glibc.waitpid(pid, &status, options) }
        return (result, status)
    }

    static func spawn(_ path: String, _ args: [String], stdoutPath: String?, stderrPath: String?, environment: [String: String] = [:]) throws(Errno) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdoutPath { posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
        if let stderrPath { posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, resetSignals(&attributes))
        let argv = ([path] + args).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let envp = mergedEnvironment(environment).map { strdup($0) } + [nil]
        defer { for pointer in envp { free(pointer) } }
        var pid: pid_t = 0
        let code = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard code == 0 else { throw Errno(code, "spawn \(path)") }
        return pid
    }

    /// This process's environment with `overrides` added or replacing the same names, less
    /// what would make a child leave loopback or speak to this process's service manager
    /// (`STARLING_*`, `NOTIFY_SOCKET`, `WATCHDOG_*`) unless `overrides` sets it.
    static func mergedEnvironment(_ overrides: [String: String]) -> [String] {
        var entries: [String] = []
        var cursor: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = environ
        while let entry = cursor?.pointee {
            let text = String(cString: entry)
            let name = String(text.prefix { $0 != "=" })
            let inherited = !name.hasPrefix("STARLING_") && name != "NOTIFY_SOCKET" && !name.hasPrefix("WATCHDOG_")
            if overrides[name] == nil, inherited { entries.append(text) }
            cursor = cursor?.successor()
        }
        return entries + overrides.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }
}

extension Sys {
    /// The terminal settings of `fd`; nil when it is not a terminal.
    static func terminalAttributes(_ fd: Int32) -> termios? {
        var attributes = termios()
        return tcgetattr(fd, &attributes) == 0 ? attributes : nil
    }

    /// Applies terminal settings at once; a failure leaves the terminal as it was, which is all
    /// a caller could do about it.
    static func setTerminalAttributes(_ fd: Int32, _ attributes: termios) {
        var attributes = attributes
        _ = tcsetattr(fd, TCSANOW, &attributes)
    }

    /// Starts a detached thread running `body`.
    static func thread(_ body: @escaping @Sendable () -> Void) throws(Errno) {
        final class Box: Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let code = pthread_create(&thread, nil, { raw in
            let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
            box.body()
            return nil
        }, box)
        guard code == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw Errno(code, "pthread_create")
        }
        pthread_detach(thread)
    }
}

// MARK: AF_UNIX datagrams (systemd's notification socket, Notify.swift)

extension Sys {
    /// Sends one datagram to an AF_UNIX address of `length` bytes; EAGAIN (the receiver's queue
    /// is full) is returned as false, not thrown.
    static func sendto(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, _ address: sockaddr_un, length: socklen_t) throws(Errno) -> Bool {
        var address = address
        do throws(Errno) {
            _ = try retrying("sendto") {
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        Glibc.sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL), $0, length)
                    }
                }
            }
            return true
        } catch where error.rawValue == EAGAIN || error.rawValue == EWOULDBLOCK {
            return false
        }
    }

    static func bind(_ fd: Int32, _ address: sockaddr_un, length: socklen_t) throws(Errno) {
        var address = address
        _ = try retrying("bind") {
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
            }
        }
    }

    /// Receives one datagram from a connected or bound socket; nil when nothing is waiting. The
    /// count is the datagram's full length (MSG_TRUNC), which may exceed the buffer.
    static func recv(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int? {
        do throws(Errno) {
            return try retrying("recv") { Glibc.recv(fd, buffer.baseAddress, buffer.count, Int32(MSG_TRUNC)) }
        } catch where error.rawValue == EAGAIN || error.rawValue == EWOULDBLOCK {
            return nil
        }
    }
}

extension Sys {
    /// Sets `attributes` so that a child starts with no signal blocked, whatever this process
    /// blocked for signalfd, and every signal at its default action, whatever this process
    /// ignores (a test of how an agent handles SIGPIPE must not inherit SIG_IGN). Returns the
    /// spawn flags this needs.
    static func resetSignals(_ attributes: inout posix_spawnattr_t) -> Int16 {
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        return Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
    }
}
