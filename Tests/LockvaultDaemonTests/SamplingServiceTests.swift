import Foundation
@testable import LockvaultDaemon
@testable import LockvaultEngine
import Logging
import Synchronization
import Testing

/// Stopping the service must not wait for the running cycle's statements.
@Suite struct SamplingServiceTests {
    /// A cycle blocked as a libpq call is, until interrupted or 30 s have passed: on a thread of
    /// its own, as the daemon's libpq calls are (holding one of the few cooperative threads
    /// instead could starve the test's own tasks on a loaded 2-core machine).
    final class BlockedRunner: CycleRunner {
        let state = Mutex((started: false, interrupted: false))

        func runCycle() async -> CycleOutcome {
            state.withLock { $0.started = true }
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                Thread.detachNewThread { [self] in
                    let deadline = ContinuousClock.now + .seconds(30)
                    while !self.state.withLock({ $0.interrupted }), ContinuousClock.now < deadline { usleep(5_000) }
                    done.resume()
                }
            }
            return CycleOutcome(snapshot: nil, assessments: [], forest: [], deadlocks: [], cycleMilliseconds: 0, pendingWrites: 0)
        }
        func interrupt() { state.withLock { $0.interrupted = true } }
        func reload() async throws(ConfigError) -> Duration { .seconds(1) }
        func shutdown() async {}
    }

    struct Silent: LifecycleNotifier {
        func ready() {}
        func status(_ line: String) {}
        func watchdog() {}
        func reloading() {}
        func stopping() {}
        var watchdogInterval: Duration? { nil }
    }

    @Test func stoppingInterruptsTheRunningCycle() async throws {
        let runner = BlockedRunner()
        let service = SamplingService(runner: runner, interval: .seconds(1), notifier: Silent(), logger: Logger(label: "test"))
        let running = Task { try await service.run() }
        // The cycle must be running before the stop, or there is nothing to interrupt. In a busy test
        // process (every suite's tests side by side on two cores) the first cycle can take seconds
        // to begin: a generous deadline, and no stop before it has begun.
        let deadline = ContinuousClock.now + .seconds(120)
        while !runner.state.withLock({ $0.started }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        try #require(runner.state.withLock { $0.started }, "the first cycle began")
        running.cancel()
        try await running.value
        #expect(runner.state.withLock { $0.interrupted }, "the cycle was told to stop, not waited for")
    }
}
