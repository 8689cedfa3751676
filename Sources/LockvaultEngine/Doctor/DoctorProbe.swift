import Foundation
public import LockvaultCore
public import PostgresClient

/// Gathers ``DoctorFacts`` from a live cluster (and vault). Read-only: catalog views and
/// `pg_settings` only, nothing that takes a lock stronger than AccessShare.
public enum DoctorProbe {
    public static func gather(target: PostgresConnection, vault: Result<PostgresConnection, PostgresError>,
                              serverLogPath: String?, resolveActs: Bool, clock: MonitorClock = .system) throws(PostgresError) -> DoctorFacts {
        var f = DoctorFacts()
        f.serverLogPath = serverLogPath
        f.resolveActs = resolveActs
        let before = clock.date()
        let row = try target.query("""
            SELECT current_setting('server_version_num')::int AS num, current_setting('server_version') AS version,
                   current_user::text AS role, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser,
                   pg_has_role(current_user, 'pg_monitor', 'MEMBER') AS monitor,
                   pg_has_role(current_user, 'pg_signal_backend', 'MEMBER') AS signal,
                   (SELECT reset_val FROM pg_settings WHERE name = 'log_lock_waits') = 'on' AS log_lock_waits,
                   (SELECT reset_val::int FROM pg_settings WHERE name = 'deadlock_timeout') AS deadlock_timeout,
                   (SELECT reset_val::int FROM pg_settings WHERE name = 'lock_timeout') AS lock_timeout,
                   (SELECT reset_val::int FROM pg_settings WHERE name = 'idle_in_transaction_session_timeout') AS idle_timeout,
                   current_setting('max_locks_per_transaction')::int AS max_locks,
                   current_setting('max_connections')::int AS max_connections,
                   current_setting('max_prepared_transactions')::int AS max_prepared,
                   (SELECT count(*) FROM pg_locks WHERE NOT fastpath)::int AS locks_in_use,
                   current_setting('logging_collector') = 'on' AS collector,
                   clock_timestamp() AS server_now
            """)[0]
        let after = clock.date()
        f.serverVersionNum = try row.decode("num", as: Int.self)
        f.serverVersion = "PostgreSQL " + (try row.decode("version", as: String.self))
        f.role = try row.decode("role", as: String.self)
        f.isSuperuser = try row.decode("superuser", as: Bool?.self) ?? false
        f.hasPgMonitor = try row.decode("monitor", as: Bool.self)
        f.hasPgSignalBackend = try row.decode("signal", as: Bool.self)
        f.logLockWaits = try row.decode("log_lock_waits", as: Bool?.self) ?? false
        f.deadlockTimeoutMs = try row.decode("deadlock_timeout", as: Int?.self) ?? 1000
        f.lockTimeoutMs = try row.decode("lock_timeout", as: Int?.self) ?? 0
        f.idleInTransactionTimeoutMs = try row.decode("idle_timeout", as: Int?.self) ?? 0
        f.maxLocksPerTransaction = try row.decode("max_locks", as: Int.self)
        f.maxConnections = try row.decode("max_connections", as: Int.self)
        f.maxPreparedTransactions = try row.decode("max_prepared", as: Int.self)
        f.locksInUse = try row.decode("locks_in_use", as: Int.self)
        f.loggingCollector = try row.decode("collector", as: Bool.self)
        let serverNow = try row.decode("server_now", as: Date.self)
        let midpoint = before.addingTimeInterval(after.timeIntervalSince(before) / 2)
        f.clockSkewSeconds = serverNow.timeIntervalSince(midpoint)

        switch vault {
        case .failure(let error):
            f.vaultError = error.description
        case .success(let conn):
            do {
                f.vaultRole = try conn.query("SELECT current_user::text AS r")[0].decode("r", as: String.self)
                f.vaultPendingMigrations = try Migrator().pending(on: conn).map(\.name)
                f.vaultWritable = try conn.query("""
                    SELECT has_function_privilege(to_regprocedure('lock_monitoring.record_cycle(jsonb)'), 'EXECUTE')
                       AND has_table_privilege(to_regclass('lock_monitoring.monitor_cycle_s'), 'INSERT') AS ok
                    """)[0].decode("ok", as: Bool?.self) ?? false
            } catch let error as MigrationError {
                f.vaultPendingMigrations = nil
                f.vaultError = error.description
            } catch {
                // A PostgresError (the statements above), classified into words that carry no secret.
                f.vaultPendingMigrations = nil
                f.vaultError = MonitorFailure.classify(error, side: .vault, role: f.vaultRole.isEmpty ? nil : f.vaultRole).message
            }
        }
        if let path = serverLogPath {
            f.serverLogReadable = FileManager.default.isReadableFile(atPath: path)
        }
        return f
    }
}
