@preconcurrency import Glibc

/// A full-screen terminal session: raw keys, alternate screen, hidden cursor; all undone by
/// ``leave()``, also after Ctrl-C (SIGINT is caught while the session lasts).
public final class TerminalSession: Sendable {
    private let saved: termios
    private let signals: WakePipe
    private let route: Signals.Route?

    private init(saved: termios, signals: WakePipe, route: Signals.Route?) {
        self.saved = saved
        self.signals = signals
        self.route = route
    }

    /// Enters the session, or nil when stdin is not a terminal.
    public static func enter() -> TerminalSession? {
        var original = termios()
        guard tcgetattr(0, &original) == 0, let signals = try? WakePipe() else { return nil }
        let route = try? Signals.route([SIGINT, SIGTERM], to: signals, ignoring: [])
        var raw = original
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO)
        _ = tcsetattr(0, TCSANOW, &raw)
        System.write("\u{1B}[?1049h\u{1B}[?25l", to: 1)
        return TerminalSession(saved: original, signals: signals, route: route)
    }

    /// Restores the terminal as it was.
    public func leave() {
        var original = saved
        _ = tcsetattr(0, TCSANOW, &original)
        System.write("\u{1B}[?25h\u{1B}[?1049l", to: 1)
        route?.restore()
    }

    /// Redraws the screen with `lines`.
    public func draw(_ lines: [String]) {
        System.write("\u{1B}[H\u{1B}[2J" + lines.joined(separator: "\r\n") + "\r\n", to: 1)
    }

    /// Waits up to `nanos`; true when the user pressed q or sent SIGINT/SIGTERM.
    public func waitForQuit(nanos: UInt64) -> Bool {
        let ready = (try? Poller.wait([0, signals.readEnd], timeoutNanos: nanos)) ?? []
        if ready.contains(signals.readEnd) { return true }
        if ready.contains(0) {
            var byte: UInt8 = 0
            let count = withUnsafeMutableBytes(of: &byte) { (try? Sys.read(0, $0)) ?? 0 }
            return count <= 0 || byte == UInt8(ascii: "q") || byte == 3
        }
        return false
    }
}
