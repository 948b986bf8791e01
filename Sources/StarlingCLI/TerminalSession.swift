import StarlingPOSIX

/// A full-screen terminal session for `top`: raw keys, alternate screen, hidden cursor; all
/// undone by ``leave()``, also after Ctrl-C (SIGINT is caught while the session lasts).
final class TerminalSession: Sendable {
    private let terminal: RawTerminal
    private let signals: WakePipe
    private let route: Signals.Route?

    private init(terminal: RawTerminal, signals: WakePipe, route: Signals.Route?) {
        self.terminal = terminal
        self.signals = signals
        self.route = route
    }

    /// Enters the session, or nil when stdin is not a terminal.
    static func enter() -> TerminalSession? {
        guard let signals = try? WakePipe(), let terminal = RawTerminal.enter() else { return nil }
        let route = try? Signals.route([Signals.interrupt, Signals.terminate], to: signals, ignoring: [])
        System.write("\u{1B}[?1049h\u{1B}[?25l", to: 1)
        return TerminalSession(terminal: terminal, signals: signals, route: route)
    }

    /// Restores the terminal as it was.
    func leave() {
        terminal.restore()
        System.write("\u{1B}[?25h\u{1B}[?1049l", to: 1)
        route?.restore()
    }

    /// Redraws the screen with `lines`.
    func draw(_ lines: [String]) {
        System.write("\u{1B}[H\u{1B}[2J" + lines.joined(separator: "\r\n") + "\r\n", to: 1)
    }

    /// Waits up to `nanos`; true when the user pressed q or Ctrl-C, or sent SIGINT/SIGTERM.
    func waitForQuit(nanos: UInt64) -> Bool {
        let ready = (try? Poller.wait([0, signals.readEnd], timeoutNanos: nanos)) ?? []
        if ready.contains(signals.readEnd) { return true }
        if ready.contains(0) {
            guard let key = RawTerminal.readKey() else { return true }
            return key == UInt8(ascii: "q") || key == 3
        }
        return false
    }
}
