import PostgresClient
import Testing

/// The vault's invariants, checked over every table: no satellite row without its hub or link,
/// no key with two current rows, no overlapping versions, no link pointing nowhere.
enum VaultConsistency {
    /// (satellite, its key columns, the hub or link it hangs off and that one's key column)
    static let satellites: [(table: String, key: [String], parent: String, parentKey: String, versioned: Bool)] = [
        ("lock_activity_s", ["lock_activity_hk"], "lock_activity_h", "lock_activity_hk", true),
        ("blocking_session_s", ["blocking_session_hk"], "blocking_session_h", "blocking_session_hk", true),
        ("deadlock_event_s", ["deadlock_event_hk"], "deadlock_event_h", "deadlock_event_hk", true),
        ("deadlock_involvement_s", ["deadlock_involvement_hk"], "deadlock_involvement_l", "deadlock_involvement_hk", true),
        ("lock_wait_analysis_s", ["lock_wait_analysis_hk"], "lock_wait_analysis_h", "lock_wait_analysis_hk", true),
        ("monitor_cycle_s", ["cluster_hk"], "monitored_cluster_h", "cluster_hk", true),
        ("deadlock_counter_s", ["cluster_hk", "database_name"], "monitored_cluster_h", "cluster_hk", true),
        ("monitor_gap_s", ["cluster_hk"], "monitored_cluster_h", "cluster_hk", false),
        ("resolve_decision_s", ["blocking_session_hk"], "blocking_session_h", "blocking_session_hk", false),
        ("blocking_episode_s", ["episode_hk"], "blocking_episode_h", "episode_hk", false),
    ]

    static let links: [(table: String, column: String, hub: String, hubKey: String)] = [
        ("lock_blocking_l", "lock_activity_hk", "lock_activity_h", "lock_activity_hk"),
        ("lock_blocking_l", "blocking_session_hk", "blocking_session_h", "blocking_session_hk"),
        ("lock_blocking_l", "blocked_session_hk", "blocking_session_h", "blocking_session_hk"),
        ("deadlock_involvement_l", "deadlock_event_hk", "deadlock_event_h", "deadlock_event_hk"),
        ("deadlock_involvement_l", "blocking_session_hk", "blocking_session_h", "blocking_session_hk"),
        ("blocking_episode_session_l", "episode_hk", "blocking_episode_h", "episode_hk"),
        ("blocking_episode_session_l", "blocking_session_hk", "blocking_session_h", "blocking_session_hk"),
    ]

    static func expectConsistent(_ conn: PostgresConnection, sourceLocation: SourceLocation = #_sourceLocation) throws {
        func count(_ sql: String) throws -> Int { try conn.query(sql)[0].decode("n", as: Int.self) }
        for s in satellites {
            let key = s.key.joined(separator: ", ")
            let orphans = try count("""
                SELECT count(*) AS n FROM lock_monitoring.\(s.table) x
                WHERE NOT EXISTS (SELECT 1 FROM lock_monitoring.\(s.parent) p WHERE p.\(s.parentKey) = x.\(s.key[0]))
                """)
            #expect(orphans == 0, "\(s.table): \(orphans) rows without their \(s.parent)", sourceLocation: sourceLocation)
            guard s.versioned else { continue }
            let twoCurrent = try count("""
                SELECT count(*) AS n FROM (SELECT \(key) FROM lock_monitoring.\(s.table) WHERE load_end_date IS NULL GROUP BY \(key) HAVING count(*) > 1) d
                """)
            #expect(twoCurrent == 0, "\(s.table): \(twoCurrent) keys with two current rows", sourceLocation: sourceLocation)
            let join = s.key.map { "a.\($0) = b.\($0)" }.joined(separator: " AND ")
            let overlapping = try count("""
                SELECT count(*) AS n FROM lock_monitoring.\(s.table) a JOIN lock_monitoring.\(s.table) b ON \(join)
                WHERE a.load_date < b.load_date AND (a.load_end_date IS NULL OR a.load_end_date > b.load_date)
                """)
            #expect(overlapping == 0, "\(s.table): \(overlapping) overlapping versions", sourceLocation: sourceLocation)
            let endedBeforeStart = try count("SELECT count(*) AS n FROM lock_monitoring.\(s.table) WHERE load_end_date < load_date")
            #expect(endedBeforeStart == 0, "\(s.table): versions that end before they begin", sourceLocation: sourceLocation)
        }
        for l in links {
            let dangling = try count("""
                SELECT count(*) AS n FROM lock_monitoring.\(l.table) x
                WHERE NOT EXISTS (SELECT 1 FROM lock_monitoring.\(l.hub) h WHERE h.\(l.hubKey) = x.\(l.column))
                """)
            #expect(dangling == 0, "\(l.table).\(l.column): \(dangling) links to no \(l.hub)", sourceLocation: sourceLocation)
        }
    }
}
