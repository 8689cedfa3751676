public import Foundation
public import LockvaultCore
public import LockvaultEngine
import CoreMetrics
import Prometheus
import Synchronization

private typealias Gauge = CoreMetrics.Gauge
private typealias Counter = CoreMetrics.Counter

/// lockvault's Prometheus metrics, fed once per cycle and by the alert sinks.
///
/// Recorded through swift-metrics (so the names are what any swift-metrics backend would see)
/// into a registry of its own rather than the process-wide `MetricsSystem`, so tests can run
/// several side by side. Labels are low-cardinality by design: severities, lock types and
/// modes, sink names, outcomes — never pids or query text.
public final class LockvaultMetrics: Sendable {
    public static let cycleBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
    ]

    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let blockers: [BlockerSeverity: Gauge]
    private let blockedSessions: Gauge
    private let longestWait: Gauge
    /// Every session waiting for a lock, and of those the waits too young to resolve (sampling.min_wait_seconds).
    private let lockWaiters: Gauge
    private let shortWaits: Gauge
    private let lockTableUtilisation: Gauge
    private let lockTableLocks: Gauge
    private let deadlocks: Counter
    private let cycleDuration: CoreMetrics.Timer
    private let vaultLag: Gauge
    private let vaultBuffered: Gauge
    private let connectionUp: [String: Gauge]
    private let suppressedAlerts: Counter
    /// Blocking episodes open now, and the session-seconds lost in those that ended.
    private let openEpisodes: Gauge
    private let episodeWaitSeconds: CoreMetrics.FloatingPointCounter
    private let lockWaitGauges = Mutex<[String: Gauge]>([:])
    private let lagStart = Mutex<Date?>(nil)

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = ["lockvault_cycle_duration_seconds": Self.cycleBuckets]
        self.factory = factory
        blockers = Dictionary(uniqueKeysWithValues: BlockerSeverity.allCases.map {
            ($0, Gauge(label: "lockvault_blockers", dimensions: [("severity", $0.rawValue)], factory: factory))
        })
        blockedSessions = Gauge(label: "lockvault_blocked_sessions", factory: factory)
        longestWait = Gauge(label: "lockvault_longest_wait_seconds", factory: factory)
        lockWaiters = Gauge(label: "lockvault_lock_waiters", factory: factory)
        shortWaits = Gauge(label: "lockvault_short_lock_waits", factory: factory)
        lockTableUtilisation = Gauge(label: "lockvault_lock_table_utilization_ratio", factory: factory)
        lockTableLocks = Gauge(label: "lockvault_lock_table_locks", factory: factory)
        deadlocks = Counter(label: "lockvault_deadlocks_total", factory: factory)
        cycleDuration = CoreMetrics.Timer(label: "lockvault_cycle_duration_seconds", factory: factory)
        vaultLag = Gauge(label: "lockvault_vault_write_lag_seconds", factory: factory)
        vaultBuffered = Gauge(label: "lockvault_vault_buffered_records", factory: factory)
        connectionUp = Dictionary(uniqueKeysWithValues: ["target", "vault"].map {
            ($0, Gauge(label: "lockvault_connection_up", dimensions: [("connection", $0)], factory: factory))
        })
        suppressedAlerts = Counter(label: "lockvault_alerts_suppressed_total", factory: factory)
        openEpisodes = Gauge(label: "lockvault_episodes_open", factory: factory)
        episodeWaitSeconds = CoreMetrics.FloatingPointCounter(label: "lockvault_episode_wait_seconds_total", factory: factory)
        // Series that must exist from the first scrape, so rate() and absent() behave.
        for outcome in ["ok", "target_error", "vault_error"] { cycles(outcome).increment(by: 0) }
        deadlocks.increment(by: 0)
        suppressedAlerts.increment(by: 0)
        for way in LockRead.allCases { lockReads(way).increment(by: 0) }
        for how in EpisodeEndedBy.allCases { episodes(how).increment(by: 0) }
        episodeWaitSeconds.increment(by: 0.0)
        openEpisodes.record(0)
    }

    /// Blocking episodes ended, by how (``EpisodeEndedBy``).
    private func episodes(_ endedBy: EpisodeEndedBy) -> Counter {
        Counter(label: "lockvault_episodes_total", dimensions: [("ended_by", endedBy.rawValue)], factory: factory)
    }

    /// How cycles learnt who blocks whom (``LockRead``).
    private func lockReads(_ way: LockRead) -> Counter {
        Counter(label: "lockvault_lock_reads_total", dimensions: [("way", way.rawValue)], factory: factory)
    }

    private func cycles(_ outcome: String) -> Counter {
        Counter(label: "lockvault_cycles_total", dimensions: [("outcome", outcome)], factory: factory)
    }

    /// Everything one cycle tells; `now` (the daemon's clock) times the vault's lag.
    public func record(_ outcome: CycleOutcome, at now: Date) {
        cycleDuration.recordNanoseconds(Int64(outcome.cycleMilliseconds * 1_000_000))
        cycles(outcome.targetError != nil ? "target_error" : outcome.vaultError != nil ? "vault_error" : "ok").increment()
        connectionUp["target"]?.record(outcome.targetError == nil ? 1 : 0)
        vaultBuffered.record(Double(outcome.pendingWrites))
        let lag: Double = lagStart.withLock { start in
            if outcome.pendingWrites == 0 { start = nil; return 0 }
            if start == nil { start = outcome.snapshot?.capturedAt ?? now }
            return max(0, now.timeIntervalSince(start!))
        }
        vaultLag.record(lag)
        if outcome.targetError == nil { connectionUp["vault"]?.record(outcome.vaultError == nil ? 1 : 0) }

        guard let snapshot = outcome.snapshot else { return }
        openEpisodes.record(Double(outcome.openEpisodes))
        for case .ended(let e) in outcome.episodeEvents {
            if let how = e.endedBy { episodes(how).increment() }
            episodeWaitSeconds.increment(by: e.waitSecondsTotal)
        }
        for severity in BlockerSeverity.allCases {
            blockers[severity]?.record(Double(outcome.assessments.filter { $0.severity == severity }.count))
        }
        let waiting = snapshot.backends.filter { !$0.blockedBy.isEmpty }
        blockedSessions.record(Double(waiting.count))
        longestWait.record(max(snapshot.longestWaitSeconds, outcome.assessments.map(\.blockingDurationSeconds).max() ?? 0))
        lockWaiters.record(Double(snapshot.lockWaiters))
        shortWaits.record(Double(snapshot.shortWaits))
        if let table = snapshot.lockTable {
            lockTableUtilisation.record(table.utilisation)
            lockTableLocks.record(Double(table.locksInUse))
        }
        if !outcome.deadlocks.isEmpty { deadlocks.increment(by: Int64(outcome.deadlocks.count)) }
        for (way, n) in snapshot.lockReads where n > 0 { lockReads(way).increment(by: Int64(n)) }
        for d in outcome.decisions {
            Counter(label: "lockvault_resolve_decisions_total", dimensions: [("decision", d.decisionName)], factory: factory).increment()
        }

        var counts: [String: (type: String, mode: String, n: Int)] = [:]
        for lock in snapshot.locks where !lock.granted {
            let key = "\(lock.lockType)|\(lock.mode)"
            counts[key, default: ("\(lock.lockType)", "\(lock.mode)", 0)].n += 1
        }
        lockWaitGauges.withLock { gauges in
            for (key, c) in counts where gauges[key] == nil {
                gauges[key] = Gauge(label: "lockvault_lock_waits", dimensions: [("locktype", c.type), ("mode", c.mode)], factory: factory)
            }
            for (key, gauge) in gauges { gauge.record(Double(counts[key]?.n ?? 0)) }
        }
    }

    /// An alert the tracker emitted (before delivery).
    public func alertEmitted(_ kind: Alert.Kind) {
        Counter(label: "lockvault_alerts_total", dimensions: [("kind", kind.rawValue)], factory: factory).increment()
    }

    public func alertsSuppressed(_ n: Int) {
        if n > 0 { suppressedAlerts.increment(by: Int64(n)) }
    }

    /// A sink's delivery outcome: `delivered`, `failed` or `dropped` (queue full).
    public func alertDelivery(sink: String, outcome: String) {
        Counter(label: "lockvault_alert_deliveries_total", dimensions: [("sink", sink), ("outcome", outcome)], factory: factory).increment()
    }

    /// Declares a sink's series at 0 so dashboards show it before its first alert.
    public func declareSink(_ sink: String) {
        for outcome in ["delivered", "failed", "dropped"] {
            Counter(label: "lockvault_alert_deliveries_total", dimensions: [("sink", sink), ("outcome", outcome)], factory: factory).increment(by: 0)
        }
    }

    /// Prometheus text exposition format (version 0.0.4).
    public func exposition() -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}
