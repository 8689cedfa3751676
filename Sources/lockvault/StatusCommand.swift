import ArgumentParser
import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient

/// `lockvault status`: what the vault says about the daemon(s) writing into it.
struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show each monitored cluster's last recorded cycle, lag, blockers, and whether its daemon looks alive (lock_monitoring.fleet_dashboard).",
        discussion: """
            The daemon writes a cycle summary when it changes and a heartbeat at least every 60 s, so a daemon is \
            'alive' when its last record is younger than --stale-after seconds (the vault's rule, \
            lock_monitoring.fleet_status; 90 by default). --json prints the rows of fleet_dashboard as JSON. \
            \(LockvaultExit.help(success: "every cluster alive", .init(LockvaultExit.failure, "a cluster is stale or nothing was ever recorded"),
                                 .malformedDSN, .notMigrated, .cannotConnect,
                                 .init(LockvaultExit.noPermission, "authentication failed or the role may not read the vault (GRANT lock_monitoring_role)")))
            """
    )

    @Option(name: .long, help: "Vault conninfo or URI; default: libpq environment.")
    var dsn: String = ""

    @Option(name: .long, help: "Seconds after which a cluster's last record counts as stale (default: the vault's rule, 90).")
    var staleAfter: Double?

    @Flag(name: .long, help: "Print the rows of lock_monitoring.fleet_dashboard as a JSON array.")
    var json = false

    func run() throws {
        let conn: PostgresConnection
        do { conn = try PostgresConnection(conninfo: dsn) } catch {
            throw MonitorFailure.classify(error, side: .vault).exit("status")
        }
        defer { conn.close() }
        let rows: [FleetStatusRow]
        do {
            rows = try FleetStatusRow.read(on: conn, staleAfterSeconds: staleAfter)
        } catch let error as PostgresError {
            let role = conn.user
            switch error.sqlState {
            case "3F000", "42883", SQLState.undefinedTable:
                throw MonitorFailure(code: .vaultNotMigrated, message: "the vault is not migrated (\(error.message)); run `lockvault migrate` first").exit("status")
            case SQLState.insufficientPrivilege:
                throw MonitorFailure(code: .insufficientPrivilege, message: "role \(role) may not read the vault (\(error.message)) — GRANT lock_monitoring_role TO \(role)").exit("status")
            default:
                throw MonitorFailure.classify(error, side: .vault, role: role).exit("status")
            }
        } catch {
            throw MonitorFailure.classify(error, side: .vault, role: conn.user).exit("status")
        }
        if json {
            print(try FleetStatusRow.json(rows))
        } else if rows.isEmpty {
            print("no cycles recorded in this vault yet")
        } else {
            for row in rows { print(Self.text(row)) }
        }
        guard !rows.isEmpty, rows.allSatisfy(\.isAlive) else { throw ExitCode(LockvaultExit.failure) }
    }

    /// One cluster, for people: the same row as fleet_dashboard.
    static func text(_ r: FleetStatusRow) -> String {
        var lines = [
            "cluster \(r.cluster_name) (system_identifier \(r.system_identifier)) — \(r.isAlive ? "alive" : "STALE")",
            "  last cycle: \(PostgresTimestamp.format(r.last_cycle_at)) (\(String(format: "%.0f", r.lag_seconds)) s ago, \(String(format: "%.1f", r.cycle_ms)) ms) by \(r.recorded_by)\(r.daemon_version.map { ", lockvault \($0)" } ?? "")",
            "  blockers: \(r.critical_blockers) CRITICAL, \(r.high_blockers) HIGH, \(r.medium_blockers) MEDIUM, \(r.low_blockers) LOW; waiting sessions: \(r.waiting_sessions)"
                + (r.longest_wait_seconds.map { String(format: ", longest wait %.0f s", $0) } ?? "")
                + (r.lock_table_capacity.map { c in ", lock table: \(r.locks_in_use ?? 0)/\(c)" } ?? ""),
            "  deadlocks in 24 h: \(r.deadlocks_24h); vault buffer: \(r.vault_buffer)",
        ]
        if let gap = r.last_gap_end { lines.append("  last gap in observation ended \(PostgresTimestamp.format(gap))") }
        return lines.joined(separator: "\n")
    }
}
