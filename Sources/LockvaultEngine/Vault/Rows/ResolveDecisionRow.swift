public import Foundation

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

/// A resolve decision to be written to the audit satellite (made by ``ExecutedDecision``: its
/// memberwise init).
public struct ResolveDecisionRecord: Sendable, Hashable {
    public var pid: Int32?
    public var backendStart: Date?
    public var preparedGid: String?
    public var database: String?
    public var decidedAt: Date
    public var decision: String
    public var reason: String
    public var dryRun: Bool
    public var action: String?
    public var outcome: String?
    public var severity: String
    public var blockedCount: Int
    public var blockingSeconds: Double
    public var decidedBy: String
}
