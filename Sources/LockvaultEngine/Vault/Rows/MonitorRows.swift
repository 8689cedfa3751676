import Foundation
import LockvaultCore
import PostgresClient

/// monitor_cycle_s (sql/functions/record_cycle_summary.sql): the cycle's summary.
struct CycleSummaryRow: Encodable, Sendable {
    var hash_diff: HashDiff
    var cluster_name: String
    var cycle_ms: Double
    var backends: Int
    /// The lock waits resolved (old enough: `sampling.min_wait_seconds`).
    var waiting_sessions: Int
    /// The waits too young to resolve, and the longest wait: not in the hash diff (a storm of
    /// millisecond waits moves them every cycle).
    var short_waits: Int
    var longest_wait_seconds: Double
    var blockers: Int
    /// The cycle's blocker rows by severity (``BlockerRow/blocking_severity``): what
    /// fleet_status shows, read from the current summary instead of every partition of
    /// blocking_session_s. In the hash diff: a severity change writes a summary row.
    var critical_blockers: Int
    var high_blockers: Int
    var medium_blockers: Int
    var low_blockers: Int
    var locks_captured: Int
    var locks_in_use: Int?
    var lock_table_capacity: Int?
    var server_version_num: Int
    /// The writing lockvault's version (not in the hash diff: the next heartbeat carries a new one).
    var daemon_version: String
    /// Cycle records waiting in the daemon's memory for the vault when this one was built, and
    /// how many of them the spool holds on disk: the daemon's vault buffer state.
    var buffered_cycles: Int
    var spooled_cycles: Int

    init(clusterName: String, cycleMilliseconds: Double, backends: Int, waitingSessions: Int, shortWaits: Int = 0, longestWaitSeconds: Double = 0,
         blockers: Int, bySeverity: [String: Int],
         locksCaptured: Int, locksInUse: Int?, lockTableCapacity: Int?, serverVersionNum: Int,
         bufferedCycles: Int = 0, spooledCycles: Int = 0, daemonVersion: String = LockvaultVersion.current) {
        cluster_name = clusterName
        cycle_ms = cycleMilliseconds
        self.backends = backends
        waiting_sessions = waitingSessions
        short_waits = shortWaits
        longest_wait_seconds = (longestWaitSeconds * 10).rounded() / 10
        self.blockers = blockers
        critical_blockers = bySeverity[BlockerSeverity.critical.rawValue] ?? 0
        high_blockers = bySeverity[BlockerSeverity.high.rawValue] ?? 0
        medium_blockers = bySeverity[BlockerSeverity.medium.rawValue] ?? 0
        low_blockers = bySeverity[BlockerSeverity.low.rawValue] ?? 0
        locks_captured = locksCaptured
        locks_in_use = locksInUse
        lock_table_capacity = lockTableCapacity
        server_version_num = serverVersionNum
        daemon_version = daemonVersion
        buffered_cycles = bufferedCycles
        spooled_cycles = spooledCycles
        // Not the backend count (it moves with every connection) nor the lock-table reading
        // (taken once a minute): either would defeat change-only writes.
        // A backlog is a change (written as it starts and as it ends), its size is not.
        var parts = [String(waitingSessions), String(blockers), String(critical_blockers), String(locksCaptured), String(serverVersionNum),
                     "\(high_blockers),\(medium_blockers),\(low_blockers)"]
        if bufferedCycles > 0 { parts.append("buffering") }
        hash_diff = HashDiff(parts)
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
