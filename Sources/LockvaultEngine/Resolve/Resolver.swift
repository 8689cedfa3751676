import Foundation
import Logging
import LockvaultCore
import PostgresClient

/// The kill rule applied to a cycle's blockers, and its candidates acted on: what the Monitor
/// runs between sampling and recording. The rule's answer for every blocker is kept whether or
/// not the resolver is on (the vault shows it); acting is for the candidates only, on the
/// target connection, re-checking identity in the statement that signals. Dry-run decisions
/// are made (and recorded) too.
struct Resolver {
    /// Cancels and terminations so far: the grace escalation and the rate caps.
    private var memory = ResolverMemory()

    /// The rule's answer for every blocker (worst first), and what was done about its candidates.
    mutating func run(_ assessments: [BlockerAssessment], policy: ResolvePolicy, scope: SignalScope, target: PostgresConnection?,
                      at now: Date, logger: Logger) -> (rulings: [ResolveDecision], decisions: [ExecutedDecision]) {
        let rulings = policy.decide(assessments, scope: scope, memory: memory, now: now)
        guard policy.enabled else { return (rulings, []) }
        let decisions = rulings.filter(\.isCandidate).map { act($0, policy: policy, scope: scope, target: target, at: now, logger: logger) }
        return (rulings, decisions)
    }

    /// Acts on one decision unless it is a dry run, and logs it as one structured event.
    private mutating func act(_ d: ResolveDecision, policy: ResolvePolicy, scope: SignalScope, target: PostgresConnection?,
                              at now: Date, logger: Logger) -> ExecutedDecision {
        var result = ExecutedDecision(decision: d, outcome: nil)
        if d.verdict == .act, !d.dryRun, let action = d.action, let s = d.assessment.session, let start = s.backendStart, let conn = target {
            let signal: SignalAction = d.eligibility == .eligible(.cancelQueuedRequest) ? .cancelQueued : action == .cancel ? .cancel : .terminate
            let outcome = SessionSignaller.signal(signal, pid: s.pid, backendStart: start, terminateTimeout: .milliseconds(policy.terminateTimeoutMs),
                                                  scope: scope, on: conn)
            result.outcome = outcome
            if outcome == .done || outcome == .timedOut {
                // A queued request's cancel escalates to nothing: it is not a holder to terminate later.
                if action == .terminate { memory.recordTermination(at: now) } else if signal == .cancel {
                    memory.recordCancel(SessionID(pid: s.pid, backendStart: start), at: now)
                }
            }
        }
        let a = d.assessment
        logger.log(level: d.verdict == .act && !d.dryRun ? .critical : .notice, "resolve decision", metadata: [
            "decision": "\(result.decisionName)", "reason": "\(d.reason)", "outcome": "\(result.outcomeText ?? "")",
            "dry_run": "\(d.dryRun)", "severity": "\(a.severity)", "blocker.pid": "\(a.pid.map(String.init) ?? "")",
            "blocked_count": "\(a.blockedCount)", "database": "\(a.session?.database ?? "")", "user": "\(a.session?.user ?? "")",
            "application": "\(a.session?.applicationName ?? "")",
        ])
        return result
    }
}
