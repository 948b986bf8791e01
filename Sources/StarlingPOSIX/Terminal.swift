@preconcurrency import Glibc

/// The terminal primitives the CLI's full-screen `top` needs (the session itself lives in the
/// CLI): raw keys on stdin and back, and one key read. The calls are in Syscalls.swift.
public final class RawTerminal: Sendable {
    private let saved: termios

    private init(saved: termios) {
        self.saved = saved
    }

    /// Switches stdin to raw keys (no line editing, no echo); nil when stdin is not a terminal.
    public static func enter() -> RawTerminal? {
        guard let original = Sys.terminalAttributes(0) else { return nil }
        var raw = original
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        Sys.setTerminalAttributes(0, raw)
        return RawTerminal(saved: original)
    }

    /// Puts stdin back as it was.
    public func restore() { Sys.setTerminalAttributes(0, saved) }

    /// One byte from stdin; nil at end of input or on error.
    public static func readKey() -> UInt8? {
        var byte: UInt8 = 0
        let count = withUnsafeMutableBytes(of: &byte) { (try? Sys.read(0, $0)) ?? 0 }
        return count > 0 ? byte : nil
    }
}
