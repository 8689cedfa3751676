import Foundation
import LockvaultCore
public import LockvaultEngine
public import Logging
public import ServiceLifecycle
import Synchronization
import UnixSignals

/// What the service loop drives: one cycle at a time, and a config reload on SIGHUP.
public protocol CycleRunner: Sendable {
    /// Before the first cycle: waits (while it may help) until the vault and the monitored
    /// cluster can be used; throws when waiting cannot help (the daemon then exits).
    func prepare() async throws
    /// Runs one cycle. Never throws: failures are reported (and recovered from) in the outcome.
    func runCycle() async -> CycleOutcome
    /// Re-reads the configuration. Returns the new cycle interval; throws — keeping the old
    /// configuration in force — when the new one is invalid.
    func reload() async throws(ConfigError) -> Duration
    /// Closes connections; called once when the service stops.
    func shutdown() async
    /// Stops the running cycle now (from any thread): the service is stopping, and a cycle must
    /// not hold it up however long its statements take.
    func interrupt()
}

extension CycleRunner {
    public func prepare() async throws {}
    public func interrupt() {}
}

/// Tracks whether cycles are making progress, for the watchdog.
///
/// A ping is due when a cycle completed since the last ping, or when no cycle is running at
/// all (waiting for the next tick with a long interval is not a hang). A cycle that has been
/// running since before the last ping gets no ping: if it hangs, systemd's watchdog fires and
/// restarts the service — which is the point.
public struct CycleProgress: Sendable, Equatable {
    public private(set) var completedSinceLastPing = false
    public private(set) var inFlight = false

    public init() {}

    public mutating func cycleStarted() { inFlight = true }
    public mutating func cycleFinished() { inFlight = false; completedSinceLastPing = true }

    /// Decides whether to ping now, and resets the "completed" mark when it does.
    public mutating func takePing() -> Bool {
        guard completedSinceLastPing || !inFlight else { return false }
        completedSinceLastPing = false
        return true
    }
}

/// The long-running sampling service: cycles on a drift-free schedule, notifies systemd,
/// pings the watchdog while cycles complete, reloads on SIGHUP, and stops cleanly on
/// SIGTERM/SIGINT (through the ServiceGroup's graceful shutdown).
public final class SamplingService: Service {
    private let runner: any CycleRunner
    private let notifier: any LifecycleNotifier
    private let logger: Logger
    private let state: Mutex<State>

    struct State {
        var interval: Duration
        var progress = CycleProgress()
        var ready = false
        var scheduleChanged = false
    }

    public init(runner: any CycleRunner, interval: Duration, notifier: any LifecycleNotifier, logger: Logger) {
        self.runner = runner
        self.notifier = notifier
        self.logger = logger
        self.state = Mutex(State(interval: interval))
    }

    public func run() async throws {
        // Start-up checks under the graceful-shutdown handler: SIGTERM while waiting for a
        // database stops cleanly; a failure that waiting can't fix ends the group with its error.
        notifier.status("checking the vault and the monitored cluster")
        do {
            try await cancelWhenGracefulShutdown { try await self.runner.prepare() }
        } catch is CancellationError {
            notifier.stopping()
            await runner.shutdown()
            logger.info("lockvault stopped before it was ready")
            return
        }
        await withDiscardingTaskGroup { group in
            group.addTask { await self.handleReloads() }
            if let watchdog = notifier.watchdogInterval {
                group.addTask { await self.pingWatchdog(every: watchdog / 2) }
            }
            await cancelWhenGracefulShutdown { await self.cycleLoop() }
            notifier.stopping()
            group.cancelAll()
        }
        await runner.shutdown()
        logger.info("lockvault stopped")
    }

    private func cycleLoop() async {
        let clock = ContinuousClock()
        var schedule = CycleSchedule(start: clock.now, interval: state.withLock { $0.interval })
        while !Task.isCancelled {
            let began = clock.now
            state.withLock { $0.progress.cycleStarted() }
            // SIGTERM cancels this task: the cycle's statements are cancelled with it.
            let runner = self.runner
            let outcome = await withTaskCancellationHandler { await runner.runCycle() } onCancel: { runner.interrupt() }
            state.withLock { $0.progress.cycleFinished() }
            notifier.status(outcome.statusLine)
            if outcome.succeeded {
                let becameReady = state.withLock { s in
                    defer { s.ready = true }
                    return !s.ready
                }
                if becameReady {
                    notifier.ready()
                    logger.info("lockvault ready", metadata: ["status": "\(outcome.statusLine)"])
                }
            }
            let (interval, changed) = state.withLock { s in
                defer { s.scheduleChanged = false }
                return (s.interval, s.scheduleChanged)
            }
            if changed { schedule = CycleSchedule(start: clock.now, interval: interval) }
            let next = schedule.nextTick(after: clock.now)
            let skipped = schedule.skippedSlots(began: began, next: next)
            if skipped > 0 {
                logger.warning("cycle overran its slot", metadata: ["skipped_slots": "\(skipped)", "cycle_ms": "\((clock.now - began).wholeMilliseconds)"])
            }
            do { try await Task.sleep(until: next, clock: clock) } catch { return }
        }
    }

    private func handleReloads() async {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals {
            notifier.reloading()
            do {
                let interval = try await runner.reload()
                state.withLock { s in
                    s.interval = interval
                    s.scheduleChanged = true
                }
                logger.notice("configuration reloaded", metadata: ["interval_ms": "\(interval.wholeMilliseconds)"])
            } catch {
                logger.error("configuration reload rejected; the previous configuration stays in force", metadata: ["error": "\(error.description)"])
            }
            notifier.ready()
        }
    }

    private func pingWatchdog(every period: Duration) async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: period) } catch { return }
            if state.withLock({ $0.progress.takePing() }) { notifier.watchdog() }
        }
    }
}
