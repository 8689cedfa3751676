public import LockvaultCore
public import PostgresClient

/// The adapter half of ``MonitorFailure`` (the type and its classifier are in LockvaultCore):
/// the facts extracted from a ``PostgresError``, and the checks a fresh connection must pass.
/// (Exit codes are the command line's: one table, in the `lockvault` executable.)
extension PostgresFailureFacts {
    /// What `error` says about itself, for the core's decisions.
    public init(_ error: PostgresError) {
        let stage: Stage = error.code == .invalidConninfo ? .conninfo : error.code == .connectionFailed ? .connect : .statement
        self.init(stage: stage, sqlState: error.sqlState, isAuthenticationFailure: error.isAuthenticationFailure,
                  connectionLost: error.requiresReconnect, message: error.message, description: error.description)
    }
}

extension MonitorFailure {
    /// Classifies an error from talking to `side` (as `role`, when known): the facts of a
    /// ``PostgresError`` go to the core's classifier.
    public static func classify(_ error: any Error, side: Side, role: String? = nil) -> MonitorFailure {
        if let failure = error as? MonitorFailure { return failure }
        if let migration = error as? MigrationError {
            return MonitorFailure(code: .vaultNotMigrated, message: "the vault schema does not match this lockvault: \(migration)")
        }
        guard let pg = error as? PostgresError else { return MonitorFailure(code: .failed, message: "\(side.rawValue): \(error)") }
        return PostgresFailureFacts(pg).classify(side: side, role: role)
    }

    /// A new connection to `side` that passed its check (``checkTarget(_:)`` or
    /// ``checkVault(_:)``), closed again when it didn't; throws what failed.
    static func connect(_ side: Side, conninfo: String, settings: SessionSettings) throws -> PostgresConnection {
        let conn = try PostgresConnection(conninfo: conninfo, settings: settings)
        do {
            switch side {
            case .target: try checkTarget(conn)
            case .vault: try checkVault(conn)
            }
        } catch {
            conn.close()
            throw error
        }
        return conn
    }

    /// Checks a fresh connection to the monitored cluster: PostgreSQL 14 or newer, and a role
    /// that sees every session (pg_monitor, or at least pg_read_all_stats). Without it other
    /// roles' sessions read as `<insufficient privilege>` with no state or wait information, and
    /// lockvault would report "no blocking" while there is.
    static func checkTarget(_ conn: PostgresConnection) throws {
        if let reason = conn.capabilities.unsupportedReason {
            throw MonitorFailure(code: .unsupportedServer, message: "the monitored cluster runs \(reason)")
        }
        let row = try conn.query("SELECT current_user AS role, pg_has_role('pg_read_all_stats', 'USAGE') AS sees_all")[0]
        let role = try row.decode("role", as: String.self)
        guard try row.decode("sees_all", as: Bool.self) else {
            throw MonitorFailure(code: .insufficientPrivilege, message: """
                role \(role) is not a member of pg_monitor: other roles' sessions would be hidden (<insufficient privilege>) \
                and their blocking missed — GRANT pg_monitor TO \(role)
                """)
        }
    }

    /// Checks a fresh vault connection: schema present and migrated to this lockvault's
    /// version, and writable by the role.
    static func checkVault(_ conn: PostgresConnection) throws {
        let row = try conn.query("""
            SELECT current_user AS role, n.oid IS NOT NULL AS has_schema,
                   n.oid IS NOT NULL AND has_schema_privilege(n.oid, 'USAGE') AS usable
            FROM (SELECT 1) one LEFT JOIN pg_namespace n ON n.nspname = 'lock_monitoring'
            """)[0]
        let role = try row.decode("role", as: String.self)
        let database = try conn.query("SELECT current_database() AS d")[0].decode("d", as: String.self)
        guard try row.decode("has_schema", as: Bool.self) else {
            throw MonitorFailure(code: .vaultNotMigrated, message: """
                the vault (database \(database)) has no lock_monitoring schema: run `lockvault migrate` against it first
                """)
        }
        guard try row.decode("usable", as: Bool.self) else {
            throw MonitorFailure(code: .insufficientPrivilege, message: "role \(role) may not use the vault schema lock_monitoring — GRANT lock_writer_role TO \(role)")
        }
        let pending: [Migration]
        do {
            pending = try Migrator().pending(on: conn)
        } catch let error as MigrationError {
            throw MonitorFailure(code: .vaultNotMigrated, message: "the vault schema does not match this lockvault: \(error)")
        }
        guard pending.isEmpty else {
            throw MonitorFailure(code: .vaultNotMigrated, message: """
                the vault (database \(database)) is not migrated: \(pending.count) migration\(pending.count == 1 ? "" : "s") pending \
                (\(pending.map(\.name).joined(separator: ", "))); run `lockvault migrate` first
                """)
        }
        let writable = try conn.query("SELECT has_table_privilege('lock_monitoring.monitor_cycle_s', 'INSERT') AS w")[0].decode("w", as: Bool.self)
        guard writable else {
            throw MonitorFailure(code: .insufficientPrivilege, message: "role \(role) may not write the vault — GRANT lock_writer_role TO \(role)")
        }
    }
}
