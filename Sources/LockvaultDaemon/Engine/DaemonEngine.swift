import Foundation
public import Logging
public import LockvaultCore
public import LockvaultEngine
import PostgresClient
import SystemdSupport

extension SystemdNotifier: LifecycleNotifier {}

/// Why the daemon can't start.
public struct StartupError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var exitCode: Int32
    public var description: String { message }

    public init(message: String, exitCode: Int32) {
        self.message = message
        self.exitCode = exitCode
    }

    /// A malformed DSN comes from the configuration: exit 78 like any bad config.
    init(_ failure: MonitorFailure) {
        if failure.kind == .invalidConnectionString {
            self.init(message: "invalid configuration: \(failure.message)", exitCode: 78)
        } else {
            self.init(message: failure.message, exitCode: failure.kind.exitCode)
        }
    }
}

extension LockvaultConfig {
    /// The engine's view of this configuration.
    public var monitorConfiguration: MonitorConfiguration {
        var severity = self.severity
        severity.killThresholdSeconds = resolve.killThresholdSeconds
        return MonitorConfiguration(
            targetDSN: targetDSN, vaultDSN: vaultDSN, clusterName: clusterName,
            snapshot: SnapshotOptions(queryTextLength: queryTextLength, lockHoldThresholdSeconds: lockHoldThresholdSeconds),
            severity: severity,
            session: SessionSettings(applicationName: "lockvault", statementTimeoutMs: statementTimeoutMs, lockTimeoutMs: lockTimeoutMs),
            serverLogPath: serverLogPath, serverLogFormat: ServerLogFormat(rawValue: serverLogFormat) ?? .stderr,
            maxBufferedCycles: maxBufferedCycles, resolve: resolvePolicy, terminateTimeoutMs: resolve.terminateTimeoutMs,
            decidedBy: "daemon@\(ProcessInfo.processInfo.hostName)")
    }

    /// The `resolve:` section as the core's policy.
    public var resolvePolicy: ResolvePolicy {
        var p = ResolvePolicy()
        p.enabled = resolve.enabled
        p.dryRun = resolve.dryRun
        p.minSeverity = BlockerSeverity(rawValue: resolve.minSeverity) ?? .critical
        p.killThresholdSeconds = resolve.killThresholdSeconds
        p.cancelGraceSeconds = resolve.cancelGraceSeconds
        p.maxTerminationsPerMinute = resolve.maxTerminationsPerMinute
        p.maxActionsPerCycle = resolve.maxActionsPerCycle
        p.allowSuperuser = resolve.allowSuperuser
        p.excludeRoles = resolve.excludeRoles
        p.excludeApplications = resolve.excludeApplications
        p.excludeDatabases = resolve.excludeDatabases
        p.excludeClientAddresses = resolve.excludeClientAddresses
        return p
    }

    public var interval: Duration { .milliseconds(Int64((intervalSeconds * 1000).rounded())) }
}

/// The daemon's ``SamplingEngine``: runs the Monitor's cycles, logs what a person must know
/// (new CRITICAL blockers, deadlocks, lost connections), and runs the scheduled analysis and
/// retention on the same thread as the cycles, so they never overlap a cycle's transaction.
public actor DaemonEngine: SamplingEngine {
    private let monitor: Monitor
    private let configPath: String
    private var config: LockvaultConfig
    private let logger: Logger
    private var critical: Set<Participant> = []
    private var lastAnalyze = Date()
    private var lastCleanup = Date()
    private var wasDegraded = false

    public init(config: LockvaultConfig, configPath: String, logger: Logger) {
        self.config = config
        self.configPath = configPath
        self.logger = logger
        self.monitor = Monitor(configuration: config.monitorConfiguration, logger: logger)
    }

    /// Before READY: the vault must be reachable, migrated to this lockvault's schema and
    /// writable, and the monitored cluster must be PostgreSQL 13+ seen through a pg_monitor
    /// role. Waits (with backoff) while the vault is unreachable; an unreachable target is left
    /// to the cycles (they retry and report degraded). Throws ``StartupError`` for what waiting
    /// can't fix: bad DSN, wrong password, missing privilege, old server, unmigrated vault.
    public func prepare() async throws {
        var attempt = 0
        while true {
            do {
                try await monitor.checkVault()
                break
            } catch {
                guard error.isTransient else { throw StartupError(error) }
                attempt += 1
                logger.warning("vault not reachable yet; retrying", metadata: ["error": "\(error.message)", "attempt": "\(attempt)"])
                try await Task.sleep(for: .milliseconds(min(15_000, 250 << min(attempt, 6))))
            }
        }
        do {
            try await monitor.checkTarget()
        } catch {
            guard error.isTransient else { throw StartupError(error) }
            logger.warning("monitored cluster not reachable yet; cycles will retry", metadata: ["error": "\(error.message)"])
        }
    }

    public func runCycle() async -> CycleReport {
        let outcome = await monitor.runCycle()
        report(outcome)
        await scheduledWork()
        return CycleReport(succeeded: outcome.succeeded, statusLine: outcome.statusLine)
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
                "recommended_action": "\(a.recommendedAction)",
            ])
        }
        critical = nowCritical
        logger.debug("cycle", metadata: ["cycle_ms": "\(String(format: "%.1f", outcome.cycleMilliseconds))", "blockers": "\(outcome.assessments.count)"])
    }

    private func scheduledWork() async {
        let now = Date()
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
            let days = config.retentionDays
            do {
                let deleted = try await monitor.withVault { conn in
                    try conn.query("SELECT coalesce(sum(rows_deleted), 0)::int8 AS n FROM lock_monitoring.cleanup_old_data($1)", [days])[0].decode("n", as: Int64.self)
                }
                logger.info("cleanup_old_data", metadata: ["rows_deleted": "\(deleted)", "retention_days": "\(days)"])
            } catch {
                logger.warning("cleanup_old_data failed", metadata: ["error": "\(error)"])
            }
        }
    }

    public func reload() async throws -> Duration {
        let new = try ConfigLoader.load(path: configPath)
        await monitor.reconfigure(new.monitorConfiguration)
        config = new
        return new.interval
    }

    public func shutdown() async {
        let (pending, failure) = await monitor.writeBuffered()
        if pending > 0 {
            logger.error("stopping with cycle records the vault could not take; they are lost", metadata: [
                "buffered": "\(pending)", "error": "\(failure?.message ?? "flush budget spent")",
            ])
        }
        await monitor.close()
    }
}
