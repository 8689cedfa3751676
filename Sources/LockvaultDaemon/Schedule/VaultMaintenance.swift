public import Foundation
import LockvaultEngine
public import Logging
public import PostgresClient

/// The vault's maintenance: three schedules, each a SQL function of the vault's own.
///
/// - partitions: `ensure_history_partitions`, at the first cycle, then hourly (``PartitionSchedule``);
/// - analysis: `analyze_lock_waits` over the time since the last run, every `schedule.analyze_interval_seconds`;
/// - retention: `RetentionRun` (`retention_drop`, `retention_sweep`, VACUUM), every `schedule.cleanup_interval_seconds`.
///
/// Runs after a cycle, on the Monitor's thread (``Monitor/withVault(_:)``), so a job never
/// overlaps a cycle's transaction; the daemon's clock decides what is due, so a test can move it.
public struct VaultMaintenance: Sendable {
    /// The config file's `schedule:` section (``LockvaultConfig/schedule``), which the loader
    /// writes into and the daemon hands over whole.
    public struct Settings: Sendable, Equatable {
        /// `schedule.analyze_interval_seconds` (0 = never).
        public var analyzeIntervalSeconds = 3600.0
        /// `schedule.cleanup_interval_seconds` (0 = never).
        public var cleanupIntervalSeconds = 86400.0
        /// `schedule.retention_days`.
        public var retentionDays = 30
        /// `schedule.retention_statement_timeout_ms`: statement_timeout of the retention runs
        /// (0 = none): a day of a fleet's history takes longer to drop than the sampling timeout
        /// allows a cycle's write.
        public var retentionStatementTimeoutMs = 600_000

        public init() {}
    }

    /// One job that is due now.
    public enum Job: Sendable, Equatable {
        case partitions
        case analyze(from: Date, to: Date)
        case retention(days: Int, statementTimeoutMs: Int)

        /// Its name in the log (the SQL function's).
        public var name: String {
            switch self {
            case .partitions: "ensure_history_partitions"
            case .analyze: "analyze_lock_waits"
            case .retention: "cleanup_old_data"
            }
        }
    }

    public var settings: Settings
    private var lastPartitions: Date?
    private var lastAnalyze: Date
    private var lastCleanup: Date

    /// `start`: when the daemon started (analysis and retention are first due an interval after it).
    public init(settings: Settings, start: Date) {
        self.settings = settings
        lastAnalyze = start
        lastCleanup = start
    }

    /// The jobs due at `now`, each marked as run (a failed one is tried at its next turn).
    public mutating func due(at now: Date) -> [Job] {
        var jobs: [Job] = []
        if PartitionSchedule.isDue(lastRun: lastPartitions, now: now) {
            lastPartitions = now
            jobs.append(.partitions)
        }
        if settings.analyzeIntervalSeconds > 0, now.timeIntervalSince(lastAnalyze) >= settings.analyzeIntervalSeconds {
            jobs.append(.analyze(from: lastAnalyze, to: now))
            lastAnalyze = now
        }
        if settings.cleanupIntervalSeconds > 0, now.timeIntervalSince(lastCleanup) >= settings.cleanupIntervalSeconds {
            lastCleanup = now
            jobs.append(.retention(days: settings.retentionDays, statementTimeoutMs: settings.retentionStatementTimeoutMs))
        }
        return jobs
    }
}

extension VaultMaintenance.Job {
    /// Runs the job on the vault connection; returns what to log about it (nil: nothing worth a line).
    public func run(on conn: PostgresConnection, logger: Logger) throws -> Logger.Metadata? {
        switch self {
        case .partitions:
            let created = try conn.query("SELECT partition_name, rows_moved FROM lock_monitoring.ensure_history_partitions($1)", [PartitionSchedule.daysAhead])
                .map { (try $0.decode("partition_name", as: String.self), try $0.decode("rows_moved", as: Int64.self)) }
            guard !created.isEmpty else { return nil }
            return ["created": "\(created.count)", "rows_moved_from_default": "\(created.reduce(0) { $0 + $1.1 })",
                    "days_ahead": "\(PartitionSchedule.daysAhead)"]
        case .analyze(let from, let to):
            let buckets = try conn.query("SELECT count(*) AS n FROM lock_monitoring.analyze_lock_waits($1, $2)", [from, to])[0].decode("n", as: Int.self)
            return ["buckets": "\(buckets)"]
        case .retention(let days, let timeout):
            let run = try RetentionRun.run(days: days, on: conn, statementTimeoutMs: timeout)
            if !run.notVacuumed.isEmpty {
                // Not an error: autovacuum reclaims them (migration 028), later.
                logger.info("retention: not vacuumed after cleanup_old_data (no privilege, or the VACUUM failed); autovacuum will",
                            metadata: ["tables": "\(run.notVacuumed.joined(separator: ","))"])
            }
            return ["rows_deleted": "\(run.rowsRemoved)", "partitions_dropped": "\(run.partitionsDropped)", "retention_days": "\(days)",
                    "sweep_batches": "\(run.sweepBatches)", "vacuumed": "\(run.vacuumed.count)"]
        }
    }
}
