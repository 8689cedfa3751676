public import LockvaultCore
public import LockvaultEngine
public import Logging
public import ServiceLifecycle
import Synchronization

/// The daemon's alerts: the tracker that decides what is worth a person's attention, the
/// dispatcher that hands it to the sinks, and the trail of both for the vault.
///
/// The Monitor asks it once per sampled cycle (``CycleAlerting``), before it records the cycle:
/// the alerts raised and the deliveries finished since go into that cycle's document, the
/// vault's one write path. As a service of the daemon's group it runs the sinks' delivery
/// tasks; on shutdown it stops taking alerts and gives queued ones a bounded time.
public final class AlertService: CycleAlerting, Service {
    private let tracker: Mutex<AlertTracker>
    private let finished = FinishedDeliveries()
    public let dispatcher: AlertDispatcher
    private let metrics: LockvaultMetrics
    private let logger: Logger

    public init(settings: AlertSettings, cluster: String, metrics: LockvaultMetrics, logger: Logger, retryBase: Duration = .seconds(1),
                clock: MonitorClock = .system) {
        tracker = Mutex(AlertTracker(policy: settings.policy, cluster: cluster))
        self.metrics = metrics
        self.logger = logger
        for sink in settings.sinks { metrics.declareSink(sink.name) }
        let finished = self.finished
        dispatcher = AlertDispatcher(sinks: settings.sinks, logger: logger, retryBase: retryBase, clock: clock) { delivery in
            metrics.alertDelivery(sink: delivery.sink, outcome: delivery.outcome.rawValue)
            finished.append(delivery)
        }
    }

    /// A reload's new alert policy, from the next cycle on (the sinks are kept until a restart).
    public func reload(policy: AlertPolicy) {
        tracker.withLock { $0.policy = policy }
    }

    public func run() async throws {
        try await dispatcher.run()
    }

    /// This cycle's alerts, for the cycle's record, with the deliveries finished since the last
    /// sampled cycle. Nothing leaves for the sinks yet: ``publish(_:)`` does that once the
    /// cycle is done, so the metrics describe the situation an alert is about before any sink
    /// hears of it.
    public func alerts(for outcome: CycleOutcome) -> (raised: [Alert], deliveries: [AlertDeliveryRecord]) {
        guard let snapshot = outcome.snapshot else { return ([], []) }   // blind cycles change nothing
        let (raised, suppressed) = tracker.withLock { t in
            let before = t.suppressedCount
            let raised = t.observe(snapshot, assessments: outcome.assessments, deadlocks: outcome.deadlocks, episodes: outcome.episodes)
            return (raised, t.suppressedCount - before)
        }
        metrics.alertsSuppressed(suppressed)
        if suppressed > 0 {
            logger.notice("alerts suppressed for a flapping blocker", metadata: ["suppressed": "\(suppressed)"])
        }
        return (raised, finished.take())
    }

    /// A finished cycle's alerts: logged as one event each (journal fields LOCKVAULT_ALERT_*; a
    /// raise, escalation or deadlock at CRITICAL level, the daemon's one CRITICAL line per
    /// incident), counted, and queued for the sinks (never awaited).
    public func publish(_ raised: [Alert]) {
        for alert in raised {
            log(alert)
            metrics.alertEmitted(alert.kind)
            dispatcher.submit(alert)
        }
    }

    /// One line per alert, keyed by the incident's alert.id (what the sinks, the vault and the
    /// journal all call it).
    private func log(_ alert: Alert) {
        logger.log(level: alert.kind == .cleared ? .notice : .critical, "alert", metadata: [
            "alert.id": "\(alert.alertID)", "alert.kind": "\(alert.kind.rawValue)", "severity": "\(alert.severity)",
            "summary": "\(alert.summary)", "blocker.pid": "\(alert.blocker?.pid.map(String.init) ?? "")",
            "blocker.prepared_gid": "\(alert.blocker?.preparedGid ?? "")", "database": "\(alert.blocker?.database ?? alert.deadlock?.database ?? "")",
            "relation": "\(alert.relation ?? "")", "blocked_count": "\(alert.blockedCount)",
            "blocking_seconds": "\(alert.blockingSeconds.map { String(Int($0)) } ?? "")", "blocks_as": "\(alert.blocksAs ?? "")",
            "lock_mode": "\(alert.lockMode ?? "")", "recommended_action": "\(alert.recommendedAction ?? "")",
            "sinks": "\(dispatcher.sinkNames.joined(separator: ","))",
        ])
    }
}

/// Deliveries the sinks finished, waiting for the next sampled cycle to carry them to the vault.
final class FinishedDeliveries: Sendable {
    /// Bound of deliveries waiting (the target may be away for long): the oldest go first.
    static let limit = 10_000
    private let waiting = Mutex<[AlertDeliveryRecord]>([])

    func append(_ delivery: AlertDeliveryRecord) {
        waiting.withLock { w in
            w.append(delivery)
            if w.count > Self.limit { w.removeFirst(w.count - Self.limit) }
        }
    }

    func take() -> [AlertDeliveryRecord] {
        waiting.withLock { w in
            defer { w = [] }
            return w
        }
    }
}
