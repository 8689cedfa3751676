import Foundation
public import LockvaultCore

/// A resolver decision and, when it was acted on, what the server did.
public struct ExecutedDecision: Sendable {
    public var decision: ResolveDecision
    public var outcome: SignalOutcome?

    /// cancelled / terminated / failed once acted on; the decision's own name otherwise.
    public var decisionName: String {
        guard let outcome, let action = decision.action else { return decision.decision }
        switch outcome {
        case .done: return action == .cancel ? "cancelled" : "terminated"
        case .timedOut: return "terminate_timed_out"
        case .identityChanged, .noLongerBlocking, .protected: return "skipped"
        case .refused: return "failed"
        }
    }

    /// The signal the server carried out (done, or a terminate sent and not yet confirmed):
    /// what ends a blocking episode by lockvault's hand.
    public var executedSignal: EpisodeDecision.Signal? {
        guard let outcome, outcome == .done || outcome == .timedOut, let action = decision.action else { return nil }
        if decision.eligibility == .eligible(.cancelQueuedRequest) { return .cancelQueued }
        return action == .cancel ? .cancel : .terminate
    }

    public var outcomeText: String? {
        guard let outcome else { return nil }
        switch outcome {
        case .done: return "done"
        case .timedOut: return "sent, but the session had not exited within the timeout"
        case .identityChanged: return "identity changed: no session with that (pid, backend_start) any more"
        case .noLongerBlocking: return "no longer blocking"
        case .protected: return "protected session (lockvault, superuser or not a client backend)"
        case .refused(let message): return "refused: \(message)"
        }
    }

    func record(decidedBy: String, at: Date) -> ResolveDecisionRecord {
        let a = decision.assessment
        var gid: String?
        if case .prepared(let g) = a.participant { gid = g }
        return ResolveDecisionRecord(
            pid: a.pid, backendStart: a.session?.backendStart, preparedGid: gid,
            database: a.session?.database ?? a.preparedTransaction?.database, decidedAt: at, decision: decisionName,
            reason: outcomeText.map { "\(decision.reason) — \($0)" } ?? decision.reason, dryRun: decision.dryRun,
            action: decision.action?.rawValue, outcome: outcomeText, severity: a.severity.rawValue, blockedCount: a.blockedCount,
            blockingSeconds: a.blockingDurationSeconds, decidedBy: decidedBy)
    }
}
