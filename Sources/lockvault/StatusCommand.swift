import ArgumentParser
import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient

/// `lockvault status`: what the vault says about the daemon(s) writing into it.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each monitored cluster's last recorded cycle, lag, and whether its daemon looks alive.",
        discussion: """
            The daemon writes a cycle summary when it changes and a heartbeat at least every 60 s, so a daemon is \
            'alive' when its last record is younger than --stale-after seconds. \
            Exit codes: 0 every cluster alive; 1 a cluster is stale or nothing was ever recorded; 64 malformed DSN; \
            65 the vault is not migrated; 69 cannot connect; 77 authentication failed or the role may not read the \
            vault (GRANT lock_monitoring_role).
            """
    )

    @Option(name: .long, help: "Vault conninfo or URI; default: libpq environment.")
    var dsn: String = ""

    @Option(name: .long, help: "Seconds after which a cluster's last record counts as stale.")
    var staleAfter: Double = 90

    func run() throws {
        let conn: PostgresConnection
        do { conn = try PostgresConnection(conninfo: dsn) } catch {
            throw MonitorFailure.classify(error, side: .vault).exit("status")
        }
        defer { conn.close() }
        let rows: PostgresResult
        do {
            rows = try conn.query("""
                SELECT h.system_identifier, coalesce(nullif(c.cluster_name, ''), '-') AS name, c.last_cycle_at,
                       extract(epoch FROM now() - c.last_cycle_at)::float8 AS lag, c.cycle_ms, c.blockers, c.critical_blockers,
                       c.waiting_sessions, c.locks_in_use, c.lock_table_capacity, c.record_source,
                       (SELECT max(g.gap_end) FROM lock_monitoring.monitor_gap_s g WHERE g.cluster_hk = h.cluster_hk) AS last_gap
                FROM lock_monitoring.monitor_cycle_s c JOIN lock_monitoring.monitored_cluster_h h USING (cluster_hk)
                WHERE c.load_end_date IS NULL ORDER BY 2, 1
                """)
        } catch {
            let role = conn.user
            switch error.sqlState {
            case "3F000", SQLState.undefinedTable:
                throw MonitorFailure(kind: .vaultNotMigrated, message: "the vault is not migrated (\(error.message)); run `lockvault migrate` first").exit("status")
            case SQLState.insufficientPrivilege:
                throw MonitorFailure(kind: .insufficientPrivilege, message: "role \(role) may not read the vault (\(error.message)) — GRANT lock_monitoring_role TO \(role)").exit("status")
            default:
                throw MonitorFailure.classify(error, side: .vault, role: role).exit("status")
            }
        }
        guard !rows.isEmpty else {
            print("no cycles recorded in this vault yet")
            throw ExitCode(LockvaultExit.failure)
        }
        var stale = false
        for row in rows {
            let lag = try row.decode("lag", as: Double.self)
            let alive = lag < staleAfter
            stale = stale || !alive
            let capacity = try row.decode("lock_table_capacity", as: Int?.self)
            let inUse = try row.decode("locks_in_use", as: Int?.self)
            print("""
                cluster \(try row.decode("name", as: String.self)) (system_identifier \(try row.decode("system_identifier", as: String.self))) — \(alive ? "alive" : "STALE")
                  last cycle: \(PostgresTimestamp.format(try row.decode("last_cycle_at", as: Date.self))) (\(String(format: "%.0f", lag)) s ago, \(String(format: "%.1f", try row.decode("cycle_ms", as: Double.self))) ms) by \(try row.decode("record_source", as: String.self))
                  blockers: \(try row.decode("blockers", as: Int.self)) (\(try row.decode("critical_blockers", as: Int.self)) CRITICAL), waiting sessions: \(try row.decode("waiting_sessions", as: Int.self))\(capacity.map { c in ", lock table: \(inUse ?? 0)/\(c)" } ?? "")
                """)
            if let gap = try row.decode("last_gap", as: Date?.self) { print("  last gap in observation ended \(PostgresTimestamp.format(gap))") }
        }
        if stale { throw ExitCode(LockvaultExit.failure) }
    }
}
