public import Foundation
public import PostgresClient

/// One row of `lock_monitoring.fleet_status()` / `fleet_dashboard`: a monitored cluster as the
/// vault sees it. The rule that calls it alive or stale is SQL's (sql/functions/fleet_status.sql);
/// `lockvault status` and the fleet bench read these rows and never restate it.
public struct FleetStatusRow: Encodable, Sendable, Equatable {
    public var cluster_name: String
    public var system_identifier: String
    public var state: String
    public var last_cycle_at: Date
    public var lag_seconds: Double
    public var critical_blockers: Int
    public var high_blockers: Int
    public var medium_blockers: Int
    public var low_blockers: Int
    public var waiting_sessions: Int
    public var longest_wait_seconds: Double?
    public var deadlocks_24h: Int
    public var daemon_version: String?
    public var buffered_cycles: Int?
    public var spooled_cycles: Int?
    public var vault_buffer: String
    public var recorded_by: String
    public var cycle_ms: Double
    public var locks_in_use: Int?
    public var lock_table_capacity: Int?
    public var last_gap_end: Date?

    public var isAlive: Bool { state == "alive" }

    /// The fleet, stale clusters first; `staleAfterSeconds` nil = the rule's default.
    public static func read(on conn: PostgresConnection, staleAfterSeconds: Double? = nil) throws -> [FleetStatusRow] {
        let rows = try staleAfterSeconds.map { try conn.query("SELECT * FROM lock_monitoring.fleet_status($1)", [$0]) }
            ?? conn.query("SELECT * FROM lock_monitoring.fleet_status()")
        return try rows.map { r in
            FleetStatusRow(
                cluster_name: try r.decode("cluster_name"), system_identifier: try r.decode("system_identifier"), state: try r.decode("state"),
                last_cycle_at: try r.decode("last_cycle_at"), lag_seconds: try r.decode("lag_seconds"),
                critical_blockers: try r.decode("critical_blockers"), high_blockers: try r.decode("high_blockers"),
                medium_blockers: try r.decode("medium_blockers"), low_blockers: try r.decode("low_blockers"),
                waiting_sessions: try r.decode("waiting_sessions"), longest_wait_seconds: try r.decode("longest_wait_seconds"),
                deadlocks_24h: try r.decode("deadlocks_24h"), daemon_version: try r.decode("daemon_version"),
                buffered_cycles: try r.decode("buffered_cycles"), spooled_cycles: try r.decode("spooled_cycles"),
                vault_buffer: try r.decode("vault_buffer"), recorded_by: try r.decode("recorded_by"), cycle_ms: try r.decode("cycle_ms"),
                locks_in_use: try r.decode("locks_in_use"), lock_table_capacity: try r.decode("lock_table_capacity"),
                last_gap_end: try r.decode("last_gap_end"))
        }
    }

    /// The rows as a JSON array (timestamps as PostgreSQL text, keys as the view's columns).
    public static func json(_ rows: [FleetStatusRow]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(PostgresTimestamp.format(date))
        }
        return String(decoding: try encoder.encode(rows), as: UTF8.self)
    }
}
