import Foundation
import PostgresClient

/// monitor_cycle_s (sql/functions/record_cycle_summary.sql): the cycle's summary.
struct CycleSummaryRow: Encodable, Sendable {
    var hash_diff: HashDiff
    var cluster_name: String
    var cycle_ms: Double
    var backends: Int
    var waiting_sessions: Int
    var blockers: Int
    var critical_blockers: Int
    var locks_captured: Int
    var locks_in_use: Int?
    var lock_table_capacity: Int?
    var server_version_num: Int

    init(clusterName: String, cycleMilliseconds: Double, backends: Int, waitingSessions: Int, blockers: Int, criticalBlockers: Int,
         locksCaptured: Int, locksInUse: Int?, lockTableCapacity: Int?, serverVersionNum: Int) {
        cluster_name = clusterName
        cycle_ms = cycleMilliseconds
        self.backends = backends
        waiting_sessions = waitingSessions
        self.blockers = blockers
        critical_blockers = criticalBlockers
        locks_captured = locksCaptured
        locks_in_use = locksInUse
        lock_table_capacity = lockTableCapacity
        server_version_num = serverVersionNum
        // Not the backend count (it moves with every connection) nor the lock-table reading
        // (taken once a minute): either would defeat change-only writes.
        hash_diff = HashDiff([String(waitingSessions), String(blockers), String(criticalBlockers), String(locksCaptured), String(serverVersionNum)])
    }
}

/// monitor_gap_s (sql/functions/record_monitor_gap.sql): a period with no observations.
struct GapRow: Encodable, Sendable, Equatable {
    var gap_start: Date
    var gap_end: Date
    var reason: String
    var hash_diff: HashDiff

    init(start: Date, end: Date, reason: String) {
        gap_start = start
        gap_end = end
        self.reason = reason
        hash_diff = HashDiff([PostgresTimestamp.format(start), PostgresTimestamp.format(end), reason])
    }
}
