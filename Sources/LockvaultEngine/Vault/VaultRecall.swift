import Foundation
import LockvaultCore
import PostgresClient

/// What the vault remembers of a cluster, asked on a monitor's first cycle: when it last
/// recorded a cycle (the daemon's own downtime is a gap from there), the deadlock counters
/// it last recorded (deadlocks while nobody sampled are counted from them), and the blocking
/// episodes it holds open (a restart in the middle of one continues it under its id).
extension VaultWriter {
    /// When the vault last recorded a cycle of this cluster (any lockvault), or nil when it
    /// never did or can't be asked now (then no gap is inferred: better none than a wrong one).
    func lastRecordedCycle(systemIdentifier: String) -> Date? {
        guard let conn = try? vault() else { return nil }
        return try? conn.query("""
            SELECT max(c.last_cycle_at) AS last FROM lock_monitoring.monitor_cycle_s c
            JOIN lock_monitoring.monitored_cluster_h h USING (cluster_hk) WHERE h.system_identifier = $1
            """, [systemIdentifier])[0].decode("last", as: Date?.self)
    }

    /// The vault's current `deadlock_counter_s` row per database of this cluster, each seen at
    /// the later of its own load and the vault's last cycle of the cluster (the counter still
    /// stood there then).
    func recordedDeadlockCounts(systemIdentifier: String) throws -> [String: RecordedDeadlockCount] {
        let rows = try vault().query("""
            SELECT c.database_name, c.deadlocks, greatest(c.load_date, m.last) AS seen_at
            FROM lock_monitoring.deadlock_counter_s c
            JOIN lock_monitoring.monitored_cluster_h h USING (cluster_hk)
            LEFT JOIN LATERAL (SELECT max(last_cycle_at) AS last FROM lock_monitoring.monitor_cycle_s x WHERE x.cluster_hk = c.cluster_hk) m ON true
            WHERE h.system_identifier = $1 AND c.load_end_date IS NULL
            """, [systemIdentifier])
        var counts: [String: RecordedDeadlockCount] = [:]
        for row in rows {
            counts[try row.decode("database_name", as: String.self)] = RecordedDeadlockCount(
                deadlocks: try row.decode("deadlocks", as: Int64.self), seenAt: try row.decode("seen_at", as: Date.self))
        }
        return counts
    }

    /// The blocking episodes the vault holds open for this cluster (`open_episodes()`), with
    /// their roots' identity and transaction.
    func openEpisodes(systemIdentifier: String) throws -> [RecordedEpisode] {
        try vault().query("SELECT * FROM lock_monitoring.open_episodes($1)", [systemIdentifier]).map { row in
            let pid = try row.decode("root_pid", as: Int32?.self)
            let gid = try row.decode("root_gid", as: String?.self)
            let root = EpisodeRoot(participant: pid.map(Participant.session) ?? .prepared(gid ?? "unknown"), pid: pid,
                                   backendStart: try row.decode("root_backend_start", as: Date?.self), gid: gid,
                                   transactionStart: try row.decode("root_xact_start", as: Date?.self))
            return RecordedEpisode(id: try row.decode("episode_id", as: String.self), startedAt: try row.decode("started_at", as: Date.self),
                                   root: root, lastSeenAt: try row.decode("last_seen_at", as: Date.self))
        }
    }
}
