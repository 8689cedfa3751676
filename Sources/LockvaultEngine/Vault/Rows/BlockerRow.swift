import Foundation
import LockvaultCore

/// blocking_session_s (sql/functions/record_blockers.sql): a blocker's state while it blocks.
/// A new column of the satellite is a property here, a column in record_blockers.sql and, if
/// DBAs should see it, in sql/views/blocking_sessions_dashboard.sql.
struct BlockerRow: Encodable, Sendable {
    var blocking_session: SessionKey
    var hash_diff: HashDiff
    var session_pid: Int32?
    var prepared_gid: String?
    var user_name: String?
    var application_name: String?
    var database_name: String?
    var client_addr: String?
    var backend_type: String
    var session_state: String
    var is_superuser: Bool
    var blocked_sessions_count: Int
    var directly_blocked_count: Int
    var blocked_pids: [Int32]
    var blocking_started: Date
    var blocking_severity: String
    var held_lock_mode: String?
    var queued_for_mode: String?
    var blocks_as: String
    var lock_target: String?
    var relation_name: String?
    var is_root_blocker: Bool
    var in_deadlock_cycle: Bool
    var recommended_action: String
    var auto_kill_eligible: Bool
    var auto_kill_reason: String
    var kill_threshold_seconds: Double
    var xact_start: Date?
    var query: String?

    /// `eligibility`: the kill rule's answer for this blocker (ResolvePolicy.decide), the one
    /// the resolver acts on.
    init(_ a: BlockerAssessment, key: SessionKey, eligibility: KillEligibility, killThresholdSeconds: Double, capturedAt: Date) {
        let s = a.session
        blocking_session = key
        session_pid = key.session_pid
        prepared_gid = key.prepared_gid
        user_name = s?.user ?? a.preparedTransaction?.owner
        application_name = s?.applicationName
        database_name = s?.database ?? a.preparedTransaction?.database
        client_addr = s?.clientAddress
        backend_type = s?.backendType ?? "prepared transaction"
        session_state = s?.state.description ?? "prepared"
        is_superuser = a.isSuperuser
        blocked_sessions_count = a.blockedCount
        directly_blocked_count = a.directlyBlocked.count
        blocked_pids = a.transitivelyBlocked
        blocking_started = a.blockingSince ?? capturedAt
        blocking_severity = a.severity.rawValue
        held_lock_mode = a.heldMode?.description
        queued_for_mode = a.queuedForMode?.description
        blocks_as = a.blocksAs.rawValue
        lock_target = a.contendedTarget
        relation_name = a.relationName
        is_root_blocker = a.isRoot
        in_deadlock_cycle = a.inCycle
        recommended_action = a.recommendedAction
        auto_kill_eligible = eligibility.isEligible
        auto_kill_reason = eligibility.reason
        kill_threshold_seconds = killThresholdSeconds
        xact_start = s?.transactionStart
        query = s?.query
        // Not the live duration or the running query: a steady blocker writes nothing.
        // How it blocks only when not as a plain holder: a holder hashes as it does without those
        // parts, so a vault written by a lockvault that did not tell holders from queued requests
        // gets no new row for a steady holder after an upgrade.
        let queueParts: [String?] = a.blocksAs == .holder && a.queuedForMode == nil ? [] : [a.blocksAs.rawValue, a.queuedForMode?.description]
        hash_diff = HashDiff([
            a.severity.rawValue, a.transitivelyBlocked.map(String.init).joined(separator: ","), String(a.directlyBlocked.count),
            s?.state.description, a.heldMode?.description, a.contendedTarget, HashDiff.flag(a.isRoot), HashDiff.flag(a.inCycle),
            HashDiff.flag(eligibility.isEligible), HashDiff.flag(a.isSuperuser), a.blockingSince.map(VaultHash.timestamp), s?.user, s?.applicationName,
            eligibility.reason,
        ] + queueParts)
    }
}
