import Foundation
public import Logging
import LockvaultCore
public import LockvaultEngine
import PostgresClient
import SystemdSupport
import Synchronization

extension SystemdNotifier: LifecycleNotifier {}

/// The daemon's ``CycleRunner``: runs the Monitor's cycles, logs what a person must know
/// (new CRITICAL blockers, deadlocks, lost connections), and runs the scheduled analysis and
/// retention on the same thread as the cycles, so they never overlap a cycle's transaction.
public actor Daemon: CycleRunner {
    private let monitor: Monitor
    private let configPath: String
    private var config: LockvaultConfig
    private let logger: Logger
    private var critical: Set<Participant> = []
    private var lastAnalyze = Date()
    private var lastCleanup = Date()
    /// When the history partitions were last ensured (nil: not yet — the first cycle does it).
    private var lastPartitions: Date?
    private var wasDegraded = false
    private var alerts: AlertTracker
    private var unwrittenAlerts: [(Alert, systemIdentifier: String)] = []
    private let deliveries: AlertDeliveryInbox
    /// Prometheus metrics, fed every cycle (served only when `metrics.listen` is set).
    public nonisolated let metrics: LockvaultMetrics
    /// Delivers alerts to `alerts.sinks`; a service of the daemon's ServiceGroup.
    public nonisolated let alertDispatcher: AlertDispatcher

    public init(config: LockvaultConfig, configPath: String, logger: Logger, alertRetryBase: Duration = .seconds(1)) {
        self.config = config
        self.configPath = configPath
        self.logger = logger
        self.monitor = Monitor(configuration: config.monitorConfiguration, logger: logger)
        self.alerts = AlertTracker(policy: config.alerts.policy, cluster: config.clusterName)
        let metrics = LockvaultMetrics()
        let inbox = AlertDeliveryInbox()
        self.metrics = metrics
        self.deliveries = inbox
        for sink in config.alerts.sinks { metrics.declareSink(sink.name) }
        self.alertDispatcher = AlertDispatcher(sinks: config.alerts.sinks, logger: logger, retryBase: alertRetryBase) { delivery in
            metrics.alertDelivery(sink: delivery.sink, outcome: delivery.outcome.rawValue)
            inbox.append(delivery)
        }
    }

    /// Before READY: the vault must be reachable, migrated to this lockvault's schema and
    /// writable, and the monitored cluster must be PostgreSQL 13+ seen through a pg_monitor
    /// role. Waits (with backoff) while the vault is unreachable; an unreachable target is left
    /// to the cycles (they retry and report degraded). Throws ``StartupError`` for what waiting
    /// can't fix: bad DSN, wrong password, missing privilege, old server, unmigrated vault.
    public func prepare() async throws {
        var backoff = Backoff()   // 250 ms doubling to 15 s, jittered, like the cycles' reconnects
        while true {
            do {
                try await monitor.checkVault()
                break
            } catch {
                guard error.isTransient else { throw StartupError(error) }
                let delay = backoff.nextDelay()
                logger.warning("vault not reachable yet; retrying", metadata: ["error": "\(error.message)", "attempt": "\(backoff.attempt)"])
                try await Task.sleep(for: delay)
            }
        }
        do {
            try await monitor.checkTarget()
        } catch {
            guard error.isTransient else { throw StartupError(error) }
            logger.warning("monitored cluster not reachable yet; cycles will retry", metadata: ["error": "\(error.message)"])
        }
    }

    public func runCycle() async -> CycleOutcome {
        let outcome = await monitor.runCycle()
        metrics.record(outcome)
        report(outcome)
        raiseAlerts(outcome)
        await writeAlertAudit()
        await scheduledWork()
        return outcome
    }

    private func report(_ outcome: CycleOutcome) {
        let degraded = !outcome.succeeded
        if degraded != wasDegraded {
            if degraded {
                logger.error("degraded", metadata: ["status": "\(outcome.statusLine)"])
            } else {
                logger.notice("recovered", metadata: ["status": "\(outcome.statusLine)"])
            }
            wasDegraded = degraded
        }
        guard outcome.snapshot != nil else { return }
        let nowCritical = Set(outcome.assessments.filter { $0.severity == .critical }.map(\.participant))
        for a in outcome.assessments where a.severity == .critical && !critical.contains(a.participant) {
            logger.critical("CRITICAL blocker", metadata: [
                "severity": "CRITICAL", "blocker.pid": "\(a.pid.map(String.init) ?? "")", "blocker.prepared_gid": "\(a.preparedTransaction?.gid ?? "")",
                "database": "\(a.session?.database ?? a.preparedTransaction?.database ?? "")", "relation": "\(a.relationName ?? "")",
                "blocked_count": "\(a.blockedCount)", "blocking_seconds": "\(Int(a.blockingDurationSeconds))",
                "blocks_as": "\(a.blocksAs)", "held_lock_mode": "\(a.heldMode?.description ?? "")",
                "queued_for_mode": "\(a.queuedForMode?.description ?? "")", "recommended_action": "\(a.recommendedAction)",
            ])
        }
        critical = nowCritical
        logger.debug("cycle", metadata: [
            "cycle_ms": "\(String(format: "%.1f", outcome.cycleMilliseconds))", "blockers": "\(outcome.assessments.count)",
            "waiting": "\(outcome.snapshot?.lockWaiters ?? 0)", "short_waits": "\(outcome.snapshot?.shortWaits ?? 0)",
            "lock_manager_passes": "\(outcome.snapshot?.lockManagerPasses ?? 0)",
        ])
    }

    /// Alerts for what changed this cycle: logged as one event each (journal fields
    /// LOCKVAULT_ALERT_*), counted, queued for the sinks (never awaited) and for the vault.
    private func raiseAlerts(_ outcome: CycleOutcome) {
        guard let snapshot = outcome.snapshot else { return }   // blind cycles change nothing
        let suppressedBefore = alerts.suppressedCount
        let raised = alerts.observe(snapshot, assessments: outcome.assessments, deadlocks: outcome.deadlocks)
        metrics.alertsSuppressed(alerts.suppressedCount - suppressedBefore)
        if alerts.suppressedCount > suppressedBefore {
            logger.notice("alerts suppressed for a flapping blocker", metadata: ["suppressed": "\(alerts.suppressedCount - suppressedBefore)"])
        }
        for alert in raised {
            logger.log(level: alert.kind == .cleared ? .notice : .critical, "alert", metadata: [
                "alert.id": "\(alert.alertID)", "alert.kind": "\(alert.kind.rawValue)", "severity": "\(alert.severity)",
                "summary": "\(alert.summary)", "blocker.pid": "\(alert.blocker?.pid.map(String.init) ?? "")",
                "blocked_count": "\(alert.blockedCount)", "blocks_as": "\(alert.blocksAs ?? "")", "sinks": "\(alertDispatcher.sinkNames.joined(separator: ","))",
            ])
            metrics.alertEmitted(alert.kind)
            alertDispatcher.submit(alert)
            unwrittenAlerts.append((alert, snapshot.systemIdentifier))
        }
    }

    /// Writes alerts and delivery outcomes to the vault; on failure keeps them (bounded) for
    /// the next cycle.
    private func writeAlertAudit() async {
        let done = deliveries.take()
        guard !unwrittenAlerts.isEmpty || !done.isEmpty else { return }
        let alerts = unwrittenAlerts
        let source = monitor.recordSource
        do {
            try await monitor.withVault { try AlertAudit.write(alerts: alerts, deliveries: done, recordSource: source, on: $0) }
            unwrittenAlerts.removeFirst(alerts.count)
        } catch {
            deliveries.putBack(done)
            if unwrittenAlerts.count > 10_000 { unwrittenAlerts.removeFirst(unwrittenAlerts.count - 10_000) }
            logger.warning("could not record alerts in the vault; will retry", metadata: ["error": "\(error)", "alerts": "\(unwrittenAlerts.count)"])
        }
    }

    private func scheduledWork() async {
        let now = Date()
        if PartitionSchedule.isDue(lastRun: lastPartitions, now: now) {
            lastPartitions = now
            do {
                let created = try await monitor.withVault { conn in
                    try conn.query("SELECT partition_name, rows_moved FROM lock_monitoring.ensure_history_partitions($1)", [PartitionSchedule.daysAhead])
                        .map { (try $0.decode("partition_name", as: String.self), try $0.decode("rows_moved", as: Int64.self)) }
                }
                if !created.isEmpty {
                    logger.info("ensure_history_partitions", metadata: [
                        "created": "\(created.count)", "rows_moved_from_default": "\(created.reduce(0) { $0 + $1.1 })", "days_ahead": "\(PartitionSchedule.daysAhead)",
                    ])
                }
            } catch {
                // Writes still land (in the default partition); the next hour tries again.
                logger.warning("ensure_history_partitions failed", metadata: ["error": "\(error)"])
            }
        }
        if config.analyzeIntervalSeconds > 0, now.timeIntervalSince(lastAnalyze) >= config.analyzeIntervalSeconds {
            let from = lastAnalyze
            lastAnalyze = now
            do {
                let buckets = try await monitor.withVault { conn in
                    try conn.query("SELECT count(*) AS n FROM lock_monitoring.analyze_lock_waits($1, $2)", [from, now])[0].decode("n", as: Int.self)
                }
                logger.info("analyze_lock_waits", metadata: ["buckets": "\(buckets)"])
            } catch {
                logger.warning("analyze_lock_waits failed", metadata: ["error": "\(error)"])
            }
        }
        if config.cleanupIntervalSeconds > 0, now.timeIntervalSince(lastCleanup) >= config.cleanupIntervalSeconds {
            lastCleanup = now
            let days = config.retentionDays, timeout = config.retentionStatementTimeoutMs
            do {
                let run = try await monitor.withVault { conn in try RetentionRun.run(days: days, on: conn, statementTimeoutMs: timeout) }
                logger.info("cleanup_old_data", metadata: [
                    "rows_deleted": "\(run.rowsRemoved)", "partitions_dropped": "\(run.partitionsDropped)",
                    "retention_days": "\(days)", "sweep_batches": "\(run.sweepBatches)", "vacuumed": "\(run.vacuumed.count)"])
                if !run.notVacuumed.isEmpty {
                    // Not an error: autovacuum reclaims them (migration 028), later.
                    logger.info("retention: not vacuumed after cleanup_old_data (no privilege, or the VACUUM failed); autovacuum will",
                                  metadata: ["tables": "\(run.notVacuumed.joined(separator: ","))"])
                }
            } catch {
                logger.warning("cleanup_old_data failed", metadata: ["error": "\(error)"])
            }
        }
    }

    public func reload() async throws -> Duration {
        let new = try ConfigLoader.load(path: configPath)
        await monitor.reconfigure(new.monitorConfiguration)
        alerts.policy = new.alerts.policy
        if new.logLevel != LoggingSetup.level.value {
            logger.notice("log level changed", metadata: ["from": "\(LoggingSetup.level.value)", "to": "\(new.logLevel)"])
            LoggingSetup.level.value = new.logLevel
        }
        if new.logDestination != config.logDestination {
            logger.warning("logging.destination takes effect at the next restart")
        }
        if new.alerts.sinks != config.alerts.sinks || new.metricsListen != config.metricsListen {
            logger.warning("alerts.sinks and metrics.listen take effect at the next restart; the running ones stay")
        }
        if new.spoolDirectory != config.spoolDirectory || new.spoolMaxMB != config.spoolMaxMB {
            logger.warning("vault.spool_directory and vault.spool_max_mb take effect at the next restart; the running spool stays")
        }
        config = new
        return new.interval
    }

    public func shutdown() async {
        let (pending, failure) = await monitor.writeBuffered()
        let spooled = await monitor.spooledRecords
        if pending > spooled {
            logger.error("stopping with cycle records the vault could not take and the spool does not hold; they are lost", metadata: [
                "buffered": "\(pending)", "spooled": "\(spooled)", "error": "\(failure?.message ?? "flush budget spent")",
            ])
        } else if pending > 0 {
            logger.notice("stopping with cycle records the vault could not take; they stay in the spool and are written after the next start", metadata: [
                "spooled": "\(spooled)", "error": "\(failure?.message ?? "flush budget spent")",
            ])
        }
        await monitor.close()
    }
}

/// Delivery outcomes handed over from the sinks' tasks to the cycle that writes the vault.
final class AlertDeliveryInbox: Sendable {
    private let records = Mutex<[AlertDeliveryRecord]>([])

    func append(_ r: AlertDeliveryRecord) { records.withLock { $0.append(r) } }
    func take() -> [AlertDeliveryRecord] { records.withLock { r in defer { r = [] }; return r } }
    func putBack(_ r: [AlertDeliveryRecord]) {
        records.withLock { current in
            current = r + current
            if current.count > 10_000 { current.removeFirst(current.count - 10_000) }
        }
    }
}
