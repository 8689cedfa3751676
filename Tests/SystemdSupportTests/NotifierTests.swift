import Foundation
import Testing
@testable import SystemdSupport
import TestSupport

@Suite(.serialized) struct SystemdNotifierTests {
    @Test func sendsEachStateToTheNotifySocket() throws {
        let listener = try NotifySocketListener()
        setenv("NOTIFY_SOCKET", listener.path, 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        let notifier = SystemdNotifier()
        #expect(notifier.isUnderSystemd)
        notifier.ready()
        #expect(listener.receive(timeout: .seconds(5)) == "READY=1")
        notifier.status("ok: 2 blockers\n(1 CRITICAL)")
        #expect(listener.receive(timeout: .seconds(5)) == "STATUS=ok: 2 blockers (1 CRITICAL)")
        notifier.watchdog()
        #expect(listener.receive(timeout: .seconds(5)) == "WATCHDOG=1")
        notifier.reloading()
        let reloading = try #require(listener.receive(timeout: .seconds(5)))
        let lines = reloading.split(separator: "\n")
        #expect(lines.first == "RELOADING=1")
        #expect(lines.count == 2 && lines[1].hasPrefix("MONOTONIC_USEC=") && UInt64(lines[1].dropFirst(15)) != nil)
        notifier.stopping()
        #expect(listener.receive(timeout: .seconds(5)) == "STOPPING=1")
    }

    @Test func outsideSystemdItIsSilent() {
        unsetenv("NOTIFY_SOCKET")
        let notifier = SystemdNotifier()
        #expect(!notifier.isUnderSystemd)
        #expect(notifier.send("READY=1") == false)
    }

    @Test func watchdogIntervalComesFromTheEnvironment() {
        setenv("WATCHDOG_USEC", "30000000", 1)
        defer { unsetenv("WATCHDOG_USEC") }
        #expect(SystemdNotifier().watchdogInterval == .seconds(30))
        setenv("WATCHDOG_PID", "1", 1)   // another process's watchdog: not ours
        defer { unsetenv("WATCHDOG_PID") }
        #expect(SystemdNotifier().watchdogInterval == nil)
    }
}
