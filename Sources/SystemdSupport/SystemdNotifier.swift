internal import CSystemd
import Foundation

/// `sd_notify` for a `Type=notify` service: READY, STATUS, WATCHDOG, RELOADING, STOPPING.
///
/// Outside systemd (no `NOTIFY_SOCKET`) every call is a silent no-op, so the same binary runs
/// under a terminal, a container or systemd.
public struct SystemdNotifier: Sendable {
    public init() {}

    /// True when started by systemd with a notification socket.
    public var isUnderSystemd: Bool { ProcessInfo.processInfo.environment["NOTIFY_SOCKET"] != nil }

    /// The watchdog interval systemd expects pings within (`WatchdogSec=`), if enabled for us.
    public var watchdogInterval: Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(usec))
    }

    public func ready() { send("READY=1") }

    /// One line shown by `systemctl status`; newlines would end the field, so they're folded.
    public func status(_ line: String) {
        send("STATUS=" + line.replacingOccurrences(of: "\n", with: " "))
    }

    public func watchdog() { send("WATCHDOG=1") }

    /// `RELOADING=1` with the `MONOTONIC_USEC=` systemd wants alongside it; `ready()` ends it.
    public func reloading() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let usec = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
        send("RELOADING=1\nMONOTONIC_USEC=\(usec)")
    }

    public func stopping() { send("STOPPING=1") }

    @discardableResult
    public func send(_ state: String) -> Bool {
        guard isUnderSystemd else { return false }
        return sd_notify(0, state) > 0
    }
}
