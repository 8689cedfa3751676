/// The kill rule's answer about one blocker in one cycle (``ResolvePolicy/decide(_:scope:memory:now:)``).
///
/// A typed value rather than a flag and a string, so every place that shows or acts on
/// eligibility — the vault's auto_kill_eligible and auto_kill_reason, `lockvault resolve`, the
/// daemon's resolver — reads the same answer and the same words.
public enum KillEligibility: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The resolver ends it (in a dry run: would), in this way.
    case eligible(KillGround)
    /// The resolver leaves it alone, for this reason.
    case ineligible(KillIneligibility)

    public var isEligible: Bool {
        if case .eligible = self { return true }
        return false
    }

    public var action: ResolveDecision.Action? {
        if case .eligible(let ground) = self { return ground.action }
        return nil
    }

    /// In words, without running numbers (a duration would go stale: the vault keeps the text
    /// as of the row's load_date while nothing else changes).
    public var reason: String {
        switch self {
        case .eligible(let ground): ground.description
        case .ineligible(let why): why.description
        }
    }

    public var description: String { (isEligible ? "eligible: " : "ineligible: ") + reason }
}

/// How the resolver acts on an eligible blocker, and why that way.
public enum KillGround: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Active: its query is cancelled first (the session and its transaction survive if the
    /// cancel frees the lock).
    case cancelActive
    /// Active, cancelled at least `cancel_grace_seconds` ago, and still blocking.
    case terminateAfterCancel(graceSeconds: Double)
    /// Idle (in transaction, or otherwise not running a query) while holding locks: nothing
    /// it does will release them.
    case terminateIdle(BackendState)
    /// A queued request: its waiting statement is cancelled, which frees the sessions queued
    /// behind it; never terminated (its session and any locks it already holds stay).
    case cancelQueuedRequest

    public var action: ResolveDecision.Action {
        switch self {
        case .cancelActive, .cancelQueuedRequest: .cancel
        case .terminateAfterCancel, .terminateIdle: .terminate
        }
    }

    public var description: String {
        switch self {
        case .cancelActive: "active blocker: cancel its query first"
        case .terminateAfterCancel(let grace): "still blocking cancel_grace_seconds (\(seconds(grace))) after pg_cancel_backend"
        case .terminateIdle(let state): "\(state) blocker holding locks"
        case .cancelQueuedRequest: "queued request: cancel its waiting statement to free the sessions queued behind it"
        }
    }
}

/// Which `resolve.exclude.*` list spared a session.
public enum ExclusionKind: String, Sendable, Hashable, Codable, CaseIterable {
    case role
    case application
    case database
    case clientAddress = "client address"
}

/// Why the resolver leaves a blocker alone.
public enum KillIneligibility: Sendable, Hashable, Codable, CustomStringConvertible {
    /// `resolve.enabled` is false: nothing is ever ended.
    case resolverOff
    /// A prepared transaction: only COMMIT/ROLLBACK PREPARED ends it, and only a person may.
    case preparedTransaction(gid: String)
    /// Below `resolve.min_severity` (the minimum is given).
    case belowMinSeverity(BlockerSeverity)
    /// No backend_start: lockvault could not be sure it signals the session it saw.
    case identityUnknown
    /// It waits itself, behind the roots given: it is not where its chain starts. Ending it
    /// may free a waiter of a lock it holds, but the chain goes on until its root ends.
    case notRoot(roots: [Participant])
    /// Blocking for less than `resolve.kill_threshold_seconds` (the threshold is given).
    case belowKillThreshold(Double)
    /// One of the sessions lockvault never signals.
    case protected(ProtectedSession)
    /// Matched a `resolve.exclude.*` entry.
    case excluded(ExclusionKind, ExclusionPattern)
    /// Cancelled, and `cancel_grace_seconds` (given) have not passed yet.
    case awaitingCancelGrace(Double)
    /// `resolve.max_actions_per_cycle` (given) already reached by worse blockers this cycle.
    case perCycleCap(Int)
    /// `resolve.max_terminations_per_minute` (given) reached.
    case rateLimited(Int)
    /// A queued request, and `resolve.cancel_queued_after_seconds` is not set.
    case queuedRequestOff
    /// A queued request that has waited less than `resolve.cancel_queued_after_seconds` (given).
    case queuedRequestWaitedLess(Double)
    /// A queued request whose waiters also wait for someone else: cancelling it frees no one.
    case queuedRequestFreesNoOne
    /// It blocks through a queued request that is cancelled this cycle (pid given): that cancel
    /// goes first, and this blocker is judged again on what is left.
    case queuedRequestFirst(pid: Int32)

    public var description: String {
        switch self {
        case .resolverOff: "the resolver is off (resolve.enabled is false)"
        case .preparedTransaction(let gid):
            "prepared transaction '\(gid)': COMMIT PREPARED or ROLLBACK PREPARED it; lockvault never ends prepared transactions"
        case .belowMinSeverity(let minimum): "below resolve.min_severity (\(minimum))"
        case .identityUnknown: "session identity unknown"
        case .notRoot(let roots):
            switch roots.count {
            case 0: "not the root: it waits for another blocker itself; ending the root of its chain ends the chain"
            case 1: "not the root: it waits itself, behind \(roots[0]), the root; ending \(roots[0]) ends the chain"
            default:
                "not the root: it waits itself, behind \(roots.map(\.description).joined(separator: ", ")), the roots; ending them ends the chain"
            }
        case .belowKillThreshold(let threshold): "below kill_threshold_seconds (\(seconds(threshold)))"
        case .protected(let protection): protection.description
        case .excluded(let kind, let pattern): "excluded \(kind.rawValue) (\(pattern))"
        case .awaitingCancelGrace(let grace): "cancelled; terminated if it still blocks after cancel_grace_seconds (\(seconds(grace)))"
        case .perCycleCap(let cap): "per-cycle cap (max_actions_per_cycle \(cap)) reached"
        case .rateLimited(let limit): "rate limit (max_terminations_per_minute \(limit)) reached"
        case .queuedRequestOff:
            "queued request: cancelling it would free the sessions queued behind it; set resolve.cancel_queued_after_seconds (lockvault resolve --cancel-queued-after SECS) to let lockvault cancel it"
        case .queuedRequestWaitedLess(let after): "queued request waiting less than cancel_queued_after_seconds (\(seconds(after)))"
        case .queuedRequestFreesNoOne: "queued request whose waiters also wait for another blocker: cancelling it would free no one"
        case .queuedRequestFirst(let pid): "the queued request pid \(pid) ahead of its waiters is cancelled first; judged again next cycle"
        }
    }
}

/// `300 s`, `0.5 s`: a setting as written, not rounded to 0.
private func seconds(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? "\(Int64(value)) s" : "\(value) s"
}
