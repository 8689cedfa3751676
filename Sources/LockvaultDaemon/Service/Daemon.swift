import Foundation
public import Logging
public import LockvaultCore
public import LockvaultEngine
import PostgresClient
import SystemdSupport

extension SystemdNotifier: LifecycleNotifier {}

/// The daemon's ``CycleRunner``: runs the Monitor's cycles (whose alerts the ``AlertService``
/// raises and whose record, alert trail included, the Monitor's VaultWriter writes), logs
/// when the daemon is degraded or recovers, and runs the vault's maintenance
/// (``VaultMaintenance``) after a cycle, on the cycles' thread, so it never overlaps a
/// cycle's transaction.
public actor Daemon: CycleRunner {
    private let monitor: Monitor
    private let configPath: String
    private var config: LockvaultConfig
    private let logger: Logger
    private let clock: MonitorClock
    private var maintenance: VaultMaintenance
    private var wasDegraded = false
    /// Prometheus metrics, fed every cycle (served only when `metrics.listen` is set).
    public nonisolated let metrics: LockvaultMetrics
    /// Raises alerts for the cycles and delivers them to `alerts.sinks`; a service of the daemon's ServiceGroup.
    public nonisolated let alerts: AlertService

    public init(config: LockvaultConfig, configPath: String, logger: Logger, alertRetryBase: Duration = .seconds(1), clock: MonitorClock = .system) {
        self.config = config
        self.configPath = configPath
        self.logger = logger
        self.clock = clock
        maintenance = VaultMaintenance(settings: config.schedule, start: clock.date())
        let metrics = LockvaultMetrics()
        self.metrics = metrics
        let alerts = AlertService(settings: config.alerts, cluster: config.monitor.clusterName, metrics: metrics, logger: logger, retryBase: alertRetryBase,
                                  clock: clock)
        self.alerts = alerts
        self.monitor = Monitor(settings: config.monitorSettings, decidedBy: "daemon@\(ProcessInfo.processInfo.hostName)", logger: logger, clock: clock, alerting: alerts)
    }

    /// Before READY: the vault must be reachable, migrated to this lockvault's schema and
    /// writable, and the monitored cluster must be PostgreSQL 14+ seen through a pg_monitor
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
        metrics.record(outcome, at: clock.date())
        report(outcome)
        alerts.publish(outcome.alerts)
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
        logger.debug("cycle", metadata: [
            "cycle_ms": "\(String(format: "%.1f", outcome.cycleMilliseconds))", "blockers": "\(outcome.assessments.count)",
            "waiting": "\(outcome.snapshot?.lockWaiters ?? 0)", "short_waits": "\(outcome.snapshot?.shortWaits ?? 0)",
            "lock_manager_passes": "\(outcome.snapshot?.lockManagerPasses ?? 0)",
        ])
    }

    /// The maintenance jobs due now; a failed one is logged and tried at its next turn (the
    /// cycles' writes still land: in the default partition, if partitions are missing).
    private func scheduledWork() async {
        for job in maintenance.due(at: clock.date()) {
            let logger = self.logger
            do {
                if let facts = try await monitor.withVault({ try job.run(on: $0, logger: logger) }) {
                    logger.info("\(job.name)", metadata: facts)
                }
            } catch {
                logger.warning("\(job.name) failed", metadata: ["error": "\(MonitorFailure.classify(error, side: .vault).message)"])
            }
        }
    }

    public func reload() async throws(ConfigError) -> Duration {
        let new = try ConfigLoader.load(path: configPath)
        await monitor.reconfigure(new.monitorSettings)
        alerts.reload(policy: new.alerts.policy)
        maintenance.settings = new.schedule
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
        if new.monitor.vault.spoolDirectory != config.monitor.vault.spoolDirectory || new.monitor.vault.spoolMaxMB != config.monitor.vault.spoolMaxMB {
            logger.warning("vault.spool_directory and vault.spool_max_mb take effect at the next restart; the running spool stays")
        }
        config = new
        return new.interval
    }

    public nonisolated func interrupt() { monitor.interrupt() }

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
