public import Foundation

/// The auto-resolver's rules (config section `resolve:`), and the one place that decides
/// whether a blocker may be ended (``decide(_:scope:memory:now:)``). Defaults are the safe
/// ones: off, and a dry run when on.
///
/// The config file decodes straight into this type (LockvaultDaemon's ConfigSchema binds each
/// `resolve.*` key to a property here); `lockvault resolve` builds one from its flags.
public struct ResolvePolicy: Sendable, Hashable, Codable {
    public var enabled = false
    public var dryRun = true
    public var minSeverity: BlockerSeverity = .critical
    /// How long a blocker must have blocked before the resolver may end it. The only copy of
    /// the threshold: the vault's kill_threshold_seconds column is written from it.
    public var killThresholdSeconds: Double = 300
    public var cancelGraceSeconds: Double = 30
    /// How long a queued request (``BlockerAssessment/isQueuedRequest``) must have waited before
    /// the resolver may cancel its statement; nil = never. Off by default like everything that
    /// signals; when set, this replaces `killThresholdSeconds` for queued requests, because
    /// cancelling one costs what `lock_timeout` would have cost: the statement that had not
    /// started.
    public var cancelQueuedAfterSeconds: Double?
    /// How long `pg_terminate_backend` waits to confirm a session ended.
    public var terminateTimeoutMs = 5000
    public var maxTerminationsPerMinute = 3
    public var maxActionsPerCycle = 1
    public var allowSuperuser = false
    /// Exact names, or `/regex/` (compiled when the config is loaded).
    public var excludeRoles: [ExclusionPattern] = []
    public var excludeApplications: [ExclusionPattern] = []
    public var excludeDatabases: [ExclusionPattern] = []
    public var excludeClientAddresses: [ExclusionPattern] = []

    public init() {}
}

/// What the resolver decided about one blocker, and why. Every blocker of a cycle gets one —
/// the dashboard's auto_kill_eligible and its reason are ``eligibility`` — and every decision
/// about a candidate is recorded, acted on or not, so a DBA can always answer "why did (or
/// didn't) lockvault end this session?".
/// Made by ``ResolvePolicy`` only (its memberwise init).
public struct ResolveDecision: Sendable, Hashable, Codable {
    public enum Action: String, Sendable, Codable { case cancel, terminate }
    public enum Verdict: String, Sendable, Codable {
        /// Signal the session (or, in a dry run, say that it would).
        case act
        /// Leave it alone; `reason` says why.
        case skip
        /// A prepared transaction: only a person can COMMIT/ROLLBACK PREPARED it.
        case recommend
        /// Not considered at all: the resolver is off, or the blocker is below
        /// `resolve.min_severity`. Nothing is recorded in resolve_decision_s for it.
        case ignore
    }

    public var assessment: BlockerAssessment
    /// The rule's answer: eligible (and how to act), or the reason not.
    public var eligibility: KillEligibility
    public var dryRun: Bool

    public var verdict: Verdict {
        switch eligibility {
        case .eligible: .act
        case .ineligible(.preparedTransaction): .recommend
        case .ineligible(.resolverOff), .ineligible(.belowMinSeverity): .ignore
        case .ineligible: .skip
        }
    }

    public var action: Action? { eligibility.action }
    /// Why, in words that stay true while the situation does (no running durations): the
    /// dashboard's auto_kill_reason, the audit's reason, the dry run's reason column.
    public var reason: String { eligibility.reason }
    /// A decision worth recording and showing: everything but ``Verdict/ignore``.
    public var isCandidate: Bool { verdict != .ignore }

    /// The audit's word for it: would_terminate, terminate, skipped, recommend_only, …
    public var decision: String {
        switch verdict {
        case .act: (dryRun ? "would_" : "") + (action?.rawValue ?? "act")
        case .skip: "skipped"
        case .recommend: "recommend_only"
        case .ignore: "not_considered"
        }
    }
}

/// What the resolver remembers between cycles: cancels awaiting their grace period, and
/// recent terminations for the rate limit.
public struct ResolverMemory: Sendable, Equatable {
    public var cancelledAt: [SessionID: Date] = [:]
    public var terminations: [Date] = []
    public init() {}

    public mutating func recordTermination(at date: Date) { terminations.append(date) }
    public mutating func recordCancel(_ session: SessionID, at date: Date) { cancelledAt[session] = date }
}

extension ResolvePolicy {
    /// The kill rule: for every blocker of a cycle, whether the resolver ends it (or, in a dry
    /// run, would) — or the reason not. The only copy of the rule: the dashboard's
    /// auto_kill_eligible and auto_kill_reason, `lockvault resolve` and the daemon's resolver
    /// all read its answer. Pure: the caller executes, then tells `memory` what really happened.
    ///
    /// In order: the resolver must be on; prepared transactions are only recommended (at any
    /// severity); the blocker at or above `minSeverity`; the session's identity known; a queued
    /// request (it waits, and sessions are queued behind its request) may only be cancelled, when
    /// `cancelQueuedAfterSeconds` is set, it has waited that long and its cancel frees at least one
    /// waiter; otherwise only root blockers are acted on (ending a session that itself waits
    /// doesn't free anyone); blocking at least
    /// `killThresholdSeconds`; never a ``ProtectedSession`` (not a client backend, lockvault's
    /// own, a superuser unless allowed — the list the signalling statement re-checks); then the
    /// exclusions (role, application, database, client address); then escalation (an active
    /// blocker is cancelled first and terminated if it still blocks after `cancelGraceSeconds`;
    /// an idle one is terminated); then the per-cycle cap and the per-minute rate limit, queued
    /// requests first and then in the order of `assessments` (worst first). A blocker whose tree
    /// holds a queued request cancelled this cycle waits for the next one: the cancel may be all
    /// it takes.
    public func decide(_ assessments: [BlockerAssessment], scope: SignalScope, memory: ResolverMemory, now: Date) -> [ResolveDecision] {
        var scope = scope
        scope.allowSuperuser = allowSuperuser
        var eligibilities = assessments.map { rule($0, scope: scope, memory: memory, now: now) }
        var actions = 0
        let recentTerminations = memory.terminations.filter { now.timeIntervalSince($0) < 60 }.count
        var terminationsThisCycle = 0
        // Queued requests take their turn first: cancelling one frees the sessions queued behind
        // it without ending anything, and the holder behind it then blocks fewer or no one.
        let order = assessments.indices.sorted { (assessments[$0].isQueuedRequest ? 0 : 1, $0) < (assessments[$1].isQueuedRequest ? 0 : 1, $1) }
        var cancelledQueued: Set<Int32> = []
        for i in order {
            guard case .eligible(let ground) = eligibilities[i] else { continue }
            let a = assessments[i]
            if ground != .cancelQueuedRequest, let ahead = a.transitivelyBlocked.first(where: cancelledQueued.contains) {
                eligibilities[i] = .ineligible(.queuedRequestFirst(pid: ahead))
            } else if actions >= maxActionsPerCycle {
                eligibilities[i] = .ineligible(.perCycleCap(maxActionsPerCycle))
            } else if ground.action == .terminate && !dryRun && recentTerminations + terminationsThisCycle >= maxTerminationsPerMinute {
                eligibilities[i] = .ineligible(.rateLimited(maxTerminationsPerMinute))
            } else {
                actions += 1
                if ground.action == .terminate { terminationsThisCycle += 1 }
                if ground == .cancelQueuedRequest, let pid = a.pid { cancelledQueued.insert(pid) }
            }
        }
        return zip(assessments, eligibilities).map { ResolveDecision(assessment: $0, eligibility: $1, dryRun: dryRun) }
    }

    /// One blocker on its own, before the caps that depend on the others.
    private func rule(_ a: BlockerAssessment, scope: SignalScope, memory: ResolverMemory, now: Date) -> KillEligibility {
        guard enabled else { return .ineligible(.resolverOff) }
        if let prepared = a.preparedTransaction ?? (a.participant.pid == nil ? a.participant.preparedPlaceholder : nil) {
            return .ineligible(.preparedTransaction(gid: prepared.gid))   // at any severity: a person must act
        }
        guard a.severity >= minSeverity else { return .ineligible(.belowMinSeverity(minSeverity)) }
        guard let s = a.session, let start = s.backendStart else { return .ineligible(.identityUnknown) }
        if a.isQueuedRequest {
            guard let after = cancelQueuedAfterSeconds else { return .ineligible(.queuedRequestOff) }
            guard !a.freedByCancel.isEmpty else { return .ineligible(.queuedRequestFreesNoOne) }
            guard (a.ownWaitSeconds ?? 0) >= after else { return .ineligible(.queuedRequestWaitedLess(after)) }
            return spared(s, scope: scope).map(KillEligibility.ineligible) ?? .eligible(.cancelQueuedRequest)
        }
        guard a.isRoot else { return .ineligible(.notRoot(roots: a.roots)) }
        guard a.blockingDurationSeconds >= killThresholdSeconds else { return .ineligible(.belowKillThreshold(killThresholdSeconds)) }
        if let why = spared(s, scope: scope) { return .ineligible(why) }
        guard s.state == .active else { return .eligible(.terminateIdle(s.state)) }
        guard let cancelled = memory.cancelledAt[SessionID(pid: s.pid, backendStart: start)] else { return .eligible(.cancelActive) }
        guard now.timeIntervalSince(cancelled) >= cancelGraceSeconds else { return .ineligible(.awaitingCancelGrace(cancelGraceSeconds)) }
        return .eligible(.terminateAfterCancel(graceSeconds: cancelGraceSeconds))
    }

    /// The sessions never signalled whatever they do: the protected ones, then the exclusions.
    private func spared(_ s: BackendActivity, scope: SignalScope) -> KillIneligibility? {
        if let protection = ProtectedSession.protecting(s, scope: scope) { return .protected(protection) }
        for (kind, patterns, value) in [(ExclusionKind.role, excludeRoles, s.user), (.application, excludeApplications, s.applicationName),
                                        (.database, excludeDatabases, s.database), (.clientAddress, excludeClientAddresses, s.clientAddress)] {
            if let p = patterns.first(where: { $0.matches(value) }) { return .excluded(kind, p) }
        }
        return nil
    }
}
