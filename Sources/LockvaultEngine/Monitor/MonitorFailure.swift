import LockvaultCore
import PostgresClient

/// Why lockvault could not sample the monitored cluster or write its vault, in words for the
/// person who has to fix it, and whether waiting can fix it.
///
/// Every command and the daemon turn a failure into one message and one exit code (the exit
/// code comes from the command line's one table, documented in README and docs/operations.md).
/// Messages never contain a password: they are built from ``PostgresError`` descriptions and
/// redacted conninfos.
public struct MonitorFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable {
        /// The server can't be reached now (down, restarting, refusing connections, network,
        /// a lock_timeout or statement_timeout): retrying may help.
        case unavailable
        /// The connection string is malformed; nothing was attempted.
        case invalidConnectionString
        /// The server refused the credentials (wrong password, no pg_hba.conf entry, no such role).
        case authenticationFailed
        /// Connected, but the role lacks a privilege lockvault needs (pg_monitor, the vault roles).
        case insufficientPrivilege
        /// PostgreSQL older than 13.
        case unsupportedServer
        /// The vault has no, or an older/newer, `lock_monitoring` schema.
        case vaultNotMigrated
        /// Anything else (an unexpected server error).
        case failed
    }

    /// Which side failed.
    public enum Side: String, Sendable {
        case target = "the monitored cluster"
        case vault = "the vault"
    }

    public var kind: Kind
    public var message: String
    public var description: String { message }

    public init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    /// Waiting and retrying can fix it; everything else needs a person.
    public var isTransient: Bool { kind == .unavailable }

    /// Classifies an error from talking to `side` (as `role`, when known).
    public static func classify(_ error: any Error, side: Side, role: String? = nil) -> MonitorFailure {
        if let failure = error as? MonitorFailure { return failure }
        if let migration = error as? MigrationError {
            return MonitorFailure(kind: .vaultNotMigrated, message: "the vault schema does not match this lockvault: \(migration)")
        }
        guard let pg = error as? PostgresError else { return MonitorFailure(kind: .failed, message: "\(side.rawValue): \(error)") }
        let who = role.map { "role \($0)" } ?? "the role"
        let state = pg.sqlState ?? ""
        if pg.code == .invalidConninfo {
            return MonitorFailure(kind: .invalidConnectionString, message: "\(side.rawValue): \(pg.message)")
        }
        if pg.isAuthenticationFailure {
            return MonitorFailure(kind: .authenticationFailed,
                                  message: "authentication to \(side.rawValue) failed: \(pg.message) — check the user and password (DSN, PGPASSWORD, ~/.pgpass) and pg_hba.conf")
        }
        if state == SQLState.insufficientPrivilege {
            let grant = side == .target ? "GRANT pg_monitor TO \(role ?? "<role>")" : "GRANT lock_writer_role TO \(role ?? "<role>")"
            return MonitorFailure(kind: .insufficientPrivilege, message: "\(who) lacks a privilege on \(side.rawValue): \(pg.message) — \(grant)")
        }
        if side == .vault, ["3F000", SQLState.undefinedTable, "42883"].contains(state) {
            return MonitorFailure(kind: .vaultNotMigrated, message: "the vault is not migrated (\(pg.message)); run `lockvault migrate`")
        }
        if pg.code == .connectionFailed {
            return MonitorFailure(kind: .unavailable, message: "cannot reach \(side.rawValue): \(pg.message)")
        }
        if pg.requiresReconnect || [SQLState.lockNotAvailable, SQLState.queryCanceled, SQLState.invalidCatalogName].contains(state) || state.hasPrefix("53") {
            return MonitorFailure(kind: .unavailable, message: "\(side.rawValue) is unavailable: \(pg.description)")
        }
        return MonitorFailure(kind: .failed, message: "\(side.rawValue): \(pg.description)")
    }

    /// Checks a fresh connection to the monitored cluster: PostgreSQL 13 or newer, and a role
    /// that sees every session (pg_monitor, or at least pg_read_all_stats). Without it other
    /// roles' sessions read as `<insufficient privilege>` with no state or wait information, and
    /// lockvault would report "no blocking" while there is.
    static func checkTarget(_ conn: PostgresConnection) throws {
        if let reason = ServerRequirements.unsupportedReason(serverVersionNum: conn.serverVersion) {
            throw MonitorFailure(kind: .unsupportedServer, message: "the monitored cluster runs \(reason)")
        }
        let row = try conn.query("SELECT current_user AS role, pg_has_role('pg_read_all_stats', 'USAGE') AS sees_all")[0]
        let role = try row.decode("role", as: String.self)
        guard try row.decode("sees_all", as: Bool.self) else {
            throw MonitorFailure(kind: .insufficientPrivilege, message: """
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
            throw MonitorFailure(kind: .vaultNotMigrated, message: """
                the vault (database \(database)) has no lock_monitoring schema: run `lockvault migrate` against it first
                """)
        }
        guard try row.decode("usable", as: Bool.self) else {
            throw MonitorFailure(kind: .insufficientPrivilege, message: "role \(role) may not use the vault schema lock_monitoring — GRANT lock_writer_role TO \(role)")
        }
        let pending: [Migration]
        do {
            pending = try Migrator().pending(on: conn)
        } catch let error as MigrationError {
            throw MonitorFailure(kind: .vaultNotMigrated, message: "the vault schema does not match this lockvault: \(error)")
        }
        guard pending.isEmpty else {
            throw MonitorFailure(kind: .vaultNotMigrated, message: """
                the vault (database \(database)) is not migrated: \(pending.count) migration\(pending.count == 1 ? "" : "s") pending \
                (\(pending.map(\.name).joined(separator: ", "))); run `lockvault migrate` first
                """)
        }
        let writable = try conn.query("SELECT has_table_privilege('lock_monitoring.monitor_cycle_s', 'INSERT') AS w")[0].decode("w", as: Bool.self)
        guard writable else {
            throw MonitorFailure(kind: .insufficientPrivilege, message: "role \(role) may not write the vault — GRANT lock_writer_role TO \(role)")
        }
    }
}
