@preconcurrency import Glibc
import StarlingCore

/// Clock, randomness, files and processes: the rest of what the shell asks of the system.
public enum System {
    /// The current monotonic and wall-clock time, as the core takes it.
    public static func now() -> Now {
        let mono = Sys.clock(CLOCK_MONOTONIC)
        let wall = Sys.clock(CLOCK_REALTIME)
        return Now(nanos: UInt64(mono.tv_sec) * 1_000_000_000 + UInt64(mono.tv_nsec),
            wallMillis: UInt64(wall.tv_sec) * 1_000 + UInt64(wall.tv_nsec) / 1_000_000)
    }

    /// Wall-clock microseconds since the epoch, for event logs.
    public static func wallMicros() -> UInt64 {
        let wall = Sys.clock(CLOCK_REALTIME)
        return UInt64(wall.tv_sec) * 1_000_000 + UInt64(wall.tv_nsec) / 1_000
    }

    /// Bytes from the kernel's random source.
    public static func randomBytes(_ count: Int) throws(Errno) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try Sys.typed { try bytes.withUnsafeMutableBytes { try Sys.urandom($0) } }
        return bytes
    }

    public static func randomUInt64() -> UInt64 {
        let bytes = (try? randomBytes(8)) ?? []
        var value = UInt64(truncatingIfNeeded: Sys.clock(CLOCK_MONOTONIC).tv_nsec) ^ UInt64(getpid())
        for byte in bytes { value = value << 8 | UInt64(byte) }
        return value
    }

    /// Resident set size in bytes of this process, or of the process `pid` (a child the tests
    /// or the benchmark measure), from /proc/…/statm; 0 when it cannot be read (a process gone).
    public static func residentBytes(of pid: Int32? = nil) -> UInt64 {
        guard let text = try? readFile("/proc/\(pid.map(String.init) ?? "self")/statm"), let bytes = String(validating: text, as: UTF8.self) else { return 0 }
        let fields = bytes.split(separator: " ")
        guard fields.count > 1, let pages = UInt64(fields[1]) else { return 0 }
        return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
    }

    /// Gives every heap block of `bytes` or more a mapping of its own, returned to the kernel
    /// when freed, for a process that grows thousands of large tables in turn: the simulator,
    /// whose peers each grow a view of every other (the arrays that grew left holes the heap
    /// kept). Process-wide and for the benchmark's simulator only; an agent's tables are few.
    /// Returns false where the C library does not take it.
    @discardableResult
    public static func mapLargeBlocks(from bytes: Int32) -> Bool { Sys.setMmapThreshold(bytes) }

    /// Runs this program again, in place, with `name=value` in its environment: for a setting
    /// the C library reads only at start-up (`GLIBC_TUNABLES`). Returns only when that failed.
    public static func restart(setting name: String, to value: String) -> Errno { Sys.reexec(setting: name, to: value) }

    /// Unmaps the pages of this process's code that hold nothing of its own (executable,
    /// file-backed mappings without a single anonymous, copied-on-write page, per
    /// /proc/self/smaps): code that ran
    /// once at start-up (and its neighbours, mapped with it by the kernel's fault-around) stops
    /// counting in the resident set; what runs again faults back in from the page cache.
    /// Returns the bytes that were resident in the mappings it dropped (0 when smaps cannot be
    /// read). Process-wide: the `starling` daemon calls it once after start-up, embedders only if
    /// they ask (``Configuration``).
    @discardableResult
    public static func dropCleanCode() -> UInt64 {
        guard let bytes = try? readFile("/proc/self/smaps") else { return 0 }
        var dropped: UInt64 = 0
        var current: (start: UInt, end: UInt, rss: UInt64, private: UInt64)?
        func finish() {
            guard let mapping = current, mapping.private == 0, mapping.end > mapping.start else { return }
            if (try? Sys.dropMapping(mapping.start, length: mapping.end - mapping.start)) != nil { dropped = min(dropped, UInt64.max / 2) + mapping.rss }
        }
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.contains(UInt8(ascii: "-")), fields.count >= 6 {
                finish()
                current = nil
                // "start-end perms offset dev inode path": executable, private, backed by a file.
                let range = first.split(separator: UInt8(ascii: "-"))
                guard range.count == 2, fields[1].elementsEqual("r-xp".utf8), fields[5].first == UInt8(ascii: "/"),
                      let start = UInt(String(decoding: range[0], as: UTF8.self), radix: 16),
                      let end = UInt(String(decoding: range[1], as: UTF8.self), radix: 16)
                else { continue }
                current = (start, end, 0, 0)
            } else if current != nil, fields.count >= 2, let kilobytes = UInt64(String(decoding: fields[1], as: UTF8.self)) {
                // The kernel's figures, kept from wrapping all the same.
                let bytes = min(kilobytes, UInt64.max / 4_096) * 1_024
                if first.elementsEqual("Rss:".utf8) { current?.rss = bytes }
                // A page this process wrote to is its own (copy on write) and counts here; pages
                // the file itself has dirty in the page cache (a binary just built) do not.
                if first.elementsEqual("Anonymous:".utf8) { current?.private = bytes }
            }
        }
        finish()
        return dropped
    }

    /// CPU time (user + system) used by this process, in nanoseconds.
    public static func cpuNanos() -> UInt64 {
        let spec = Sys.clock(CLOCK_PROCESS_CPUTIME_ID)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    public static var processID: Int32 { getpid() }

    public static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    /// Writes text to a descriptor (1 stdout, 2 stderr) without buffering.
    public static func write(_ text: String, to fd: Int32) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = (try? bytes.withUnsafeMutableBytes { (raw) throws(Errno) in
                try Sys.write(fd, UnsafeRawBufferPointer(rebasing: raw[offset...]))
            }) ?? -1
            if written <= 0 { return }
            offset += written
        }
        bytes.removeAll()
    }

    // MARK: Files

    /// The whole file, or a thrown Errno (ENOENT when missing).
    public static func readFile(_ path: String) throws(Errno) -> [UInt8] {
        let fd = try Sys.open(path, O_RDONLY)
        defer { Sys.close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = try Sys.typed { try chunk.withUnsafeMutableBytes { try Sys.read(fd, $0) } }
            if count == 0 { return out }
            out.append(contentsOf: chunk[0..<count])
        }
    }

    /// Replaces `path` atomically: write a temporary file, fsync it, rename over, fsync the folder.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws(Errno) {
        let temporary = path + ".tmp"
        let fd = try Sys.open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        do throws(Errno) {
            var offset = 0
            while offset < bytes.count {
                offset += try Sys.typed { try bytes.withUnsafeBytes { try Sys.write(fd, UnsafeRawBufferPointer(rebasing: $0[offset...])) } }
            }
            try Sys.fsync(fd)
        } catch {
            Sys.close(fd)
            throw error
        }
        Sys.close(fd)
        try Sys.rename(temporary, path)
        let folder = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        if let dir = try? Sys.open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY) {
            try? Sys.fsync(dir)
            Sys.close(dir)
        }
    }

    /// Opens a file for appending (event logs); the caller closes it with ``close(_:)``.
    public static func openAppend(_ path: String) throws(Errno) -> Int32 {
        try Sys.open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    }

    public static func close(_ fd: Int32) { Sys.close(fd) }

    public static func rename(_ from: String, _ to: String) throws(Errno) { try Sys.rename(from, to) }
    public static func makeDirectory(_ path: String) throws(Errno) { try Sys.mkdir(path) }

    public static func sleep(millis: UInt64) {
        var request = timespec(tv_sec: Int(millis / 1000), tv_nsec: Int(millis % 1000) * 1_000_000)
        var remaining = timespec()
        while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
    }

    /// The path of the running executable.
    public static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Child processes, for StarlingTestSupport's `ChildProcess` (the tests, the demo and the
/// benchmark start agents and CLI calls with it); the calls are in Syscalls.swift.
extension System {
    /// Starts `path` with `args` and returns its pid; stdin is /dev/null, stdout and stderr go to
    /// files (created or truncated) if given, else to this process's. The child gets this
    /// process's environment with `environment` added (or replacing the same names).
    public static func spawn(_ path: String, _ args: [String], stdout: String? = nil, stderr: String? = nil,
                             environment: [String: String] = [:]) throws(Errno) -> Int32 {
        try Sys.spawn(path, args, stdoutPath: stdout, stderrPath: stderr, environment: environment)
    }

    /// Sends `signal` to `pid`; a process already gone is not an error.
    public static func signal(_ pid: Int32, _ signal: Int32) { try? Sys.kill(pid, signal) }

    /// Reaps `pid` without blocking: nil while it runs, else its exit code (128+signal when a
    /// signal ended it) and that signal (0 when it exited).
    public static func reap(_ pid: Int32) throws(Errno) -> (code: Int32, signal: Int32)? {
        let (reaped, status) = try Sys.waitpid(pid, WNOHANG)
        guard reaped == pid else { return nil }
        let signal = status & 0x7f
        return (signal == 0 ? (status >> 8) & 0xff : 128 + signal, signal)
    }
}

extension System {
    /// Ends the process with `code` (stdout and stderr are unbuffered here, nothing to flush).
    public static func exit(_ code: Int32) -> Never { Glibc.exit(code) }
}

// MARK: Files that must not be followed, blocked on or half-written

/// Why ``System/readRegularFile(_:followLinks:maxBytes:)`` refused a file.
public enum FileReadError: Error, CustomStringConvertible, Sendable {
    /// The call failed (ENOENT when the file is missing).
    case system(Errno)
    /// The name is a symbolic link and links are not followed here.
    case symbolicLink
    /// The name is not a regular file: "a directory", "a FIFO", "a device", "a socket".
    case notRegular(String)
    case tooLarge(size: Int64, limit: Int)

    public var isMissing: Bool {
        if case .system(let errno) = self { return errno == .noEntry }
        return false
    }

    public var description: String {
        switch self {
        case .system(let errno): errno.description
        case .symbolicLink: "is a symbolic link (not followed)"
        case .notRegular(let kind): "is \(kind), not a regular file"
        case .tooLarge(let size, let limit): "is \(size) bytes, more than the \(limit) allowed"
        }
    }
}

/// A regular file's bytes and permission bits, read through one descriptor.
public struct RegularFile: Sendable {
    public var bytes: [UInt8]
    /// Permission bits (`st_mode & 0o777`).
    public var mode: UInt32
}

extension System {
    /// Reads a regular file whole. The file is opened non-blocking (a FIFO or a device would
    /// otherwise block the caller) and checked with `fstat` on the same descriptor before a byte
    /// is read; without `followLinks` a symbolic link is refused (O_NOFOLLOW).
    public static func readRegularFile(_ path: String, followLinks: Bool, maxBytes: Int) throws(FileReadError) -> RegularFile {
        let fd: Int32
        do throws(Errno) {
            fd = try Sys.open(path, O_RDONLY | O_NONBLOCK | (followLinks ? 0 : O_NOFOLLOW))
        } catch where !followLinks && error.rawValue == ELOOP {
            throw .symbolicLink
        } catch {
            throw .system(error)
        }
        defer { Sys.close(fd) }
        let info: stat
        do { info = try Sys.fstat(fd) } catch { throw .system(error) }
        if let kind = fileKind(info.st_mode) { throw .notRegular(kind) }
        guard info.st_size <= maxBytes else { throw .tooLarge(size: Int64(info.st_size), limit: maxBytes) }
        var out: [UInt8] = []
        out.reserveCapacity(Int(info.st_size))
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count: Int
            do { count = try Sys.typed { try chunk.withUnsafeMutableBytes { try Sys.read(fd, $0) } } } catch { throw .system(error) }
            if count == 0 { return RegularFile(bytes: out, mode: UInt32(info.st_mode) & 0o777) }
            // The file may grow while it is read: the bound holds whatever fstat said.
            guard out.count + count <= maxBytes else { throw .tooLarge(size: Int64(out.count + count), limit: maxBytes) }
            out.append(contentsOf: chunk[0..<count])
        }
    }

    /// nil for a regular file, else what the name is.
    private static func fileKind(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: nil
        case S_IFDIR: "a directory"
        case S_IFIFO: "a FIFO"
        case S_IFCHR, S_IFBLK: "a device"
        case S_IFSOCK: "a socket"
        case S_IFLNK: "a symbolic link"
        default: "not a regular file"
        }
    }

    /// Replaces `path` so that a crash leaves the old file or the new one, never a mix, and never
    /// writes through a link: `path.tmp` is unlinked (a leftover, or a link planted there, goes;
    /// its target is untouched), created exclusively with O_NOFOLLOW and mode 0600, written and
    /// fsynced, renamed over `path`, and the folder is fsynced so the rename itself is durable.
    public static func replaceFile(_ path: String, _ bytes: [UInt8]) throws(Errno) {
        Sys.close(try replaceFileKeepingOpen(path, bytes))
    }

    /// ``replaceFile(_:_:)`` that returns the new file open for appending (O_APPEND); the caller
    /// closes it with ``close(_:)``.
    public static func replaceFileKeepingOpen(_ path: String, _ bytes: [UInt8]) throws(Errno) -> Int32 {
        let temporary = path + ".tmp"
        try Sys.unlink(temporary)
        let fd = try Sys.open(temporary, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
        do throws(Errno) {
            try writeAll(fd, bytes)
            try Sys.fsync(fd)
            try Sys.rename(temporary, path)
            try syncDirectory(containing: path)
        } catch {
            Sys.close(fd)
            try? Sys.unlink(temporary)
            throw error
        }
        return fd
    }

    /// Appends `bytes` and returns once they are on disk (write, then fsync).
    public static func appendDurably(_ fd: Int32, _ bytes: [UInt8]) throws(Errno) {
        try writeAll(fd, bytes)
        try Sys.fsync(fd)
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(Errno) {
        var offset = 0
        while offset < bytes.count {
            let written = try Sys.typed { try bytes.withUnsafeBytes { try Sys.write(fd, UnsafeRawBufferPointer(rebasing: $0[offset...])) } }
            // A regular file never takes zero bytes unless it cannot take more.
            guard written > 0 else { throw Errno(ENOSPC, "write") }
            offset += written
        }
    }

    private static func syncDirectory(containing path: String) throws(Errno) {
        let folder = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let dir = try Sys.open(folder.isEmpty ? (path.hasPrefix("/") ? "/" : ".") : folder, O_RDONLY | O_DIRECTORY)
        defer { Sys.close(dir) }
        try Sys.fsync(dir)
    }

    /// Removes a name without following it; a missing name is fine.
    public static func removeFile(_ path: String) throws(Errno) { try Sys.unlink(path) }

    /// Makes sure `path` is a directory this process can create files in: created (mode 0700)
    /// when missing, opened as a directory (ENOTDIR when it names a file), and probed by creating
    /// and removing a file exclusively — permission bits alone would not tell (root, read-only
    /// mounts).
    public static func prepareDirectory(_ path: String) throws(Errno) {
        try Sys.mkdir(path)
        let dir = try Sys.open(path, O_RDONLY | O_DIRECTORY)
        Sys.close(dir)
        let probe = directoryProbe(path)
        try Sys.unlink(probe)
        let fd = try Sys.open(probe, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
        Sys.close(fd)
        try Sys.unlink(probe)
    }

    /// The name of the probe file ``prepareDirectory(_:)`` creates in `path` (for tests).
    public static func directoryProbe(_ path: String) -> String { "\(path)/.starling-probe-\(getpid())" }
}
