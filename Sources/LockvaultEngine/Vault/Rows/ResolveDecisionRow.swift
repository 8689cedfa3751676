import Foundation

/// resolve_decision_s (sql/functions/record_resolve_decisions.sql): one resolve decision, acted on or not.
struct ResolveDecisionRow: Encodable, Sendable {
    var blocking_session: SessionKey
    var hash_diff: HashDiff
    /// When it was decided.
    var load_date: Date
    var decision: String
    var reason: String
    var dry_run: Bool
    var action: String?
    var outcome: String?
    var severity: String
    var blocked_sessions_count: Int
    var blocking_seconds: Double
    var decided_by: String

    init(_ d: ResolveDecisionRecord, session: SessionKey) {
        blocking_session = session
        load_date = d.decidedAt
        decision = d.decision
        reason = d.reason
        dry_run = d.dryRun
        action = d.action
        outcome = d.outcome
        severity = d.severity
        blocked_sessions_count = d.blockedCount
        blocking_seconds = d.blockingSeconds
        decided_by = d.decidedBy
        hash_diff = HashDiff([d.decision, d.reason, d.outcome])
    }
}
