public import Foundation

/// The auto-resolver's rules (config section `resolve:`). Defaults are the safe ones: off, and
/// a dry run when on.
public struct ResolvePolicy: Sendable, Hashable, Codable {
    public var enabled = false
    public var dryRun = true
    public var minSeverity: BlockerSeverity = .critical
    public var killThresholdSeconds: Double = 300
    public var cancelGraceSeconds: Double = 30
    public var maxTerminationsPerMinute = 3
    public var maxActionsPerCycle = 1
    public var allowSuperuser = false
    /// Exact names, or `/regex/`.
    public var excludeRoles: [String] = []
    public var excludeApplications: [String] = []
    public var excludeDatabases: [String] = []
    public var excludeClientAddresses: [String] = []

    public init() {}

    /// An exclusion entry matches a value exactly, or as a regular expression when written
    /// `/like this/` (unanchored: write `^…$` to anchor).
    public static func matches(_ pattern: String, _ value: String?) -> Bool {
        guard let value else { return false }
        if let body = regexBody(pattern) {
            guard let regex = try? NSRegularExpression(pattern: body) else { return false }
            return regex.firstMatch(in: value, range: NSRange(value.startIndex..., in: value)) != nil
        }
        return pattern == value
    }

    /// The regular expression of a `/…/` entry; nil for an exact name. (Config validation uses
    /// it to reject a bad regex up front.)
    public static func regexBody(_ pattern: String) -> String? {
        pattern.count >= 2 && pattern.hasPrefix("/") && pattern.hasSuffix("/") ? String(pattern.dropFirst().dropLast()) : nil
    }
}

/// What the resolver decided about one blocker, and why. Every decision is recorded — acted on
/// or not — so a DBA can always answer "why did (or didn't) lockvault end this session?".
public struct ResolveDecision: Sendable, Hashable, Codable {
    public enum Action: String, Sendable, Codable { case cancel, terminate }
    public enum Verdict: String, Sendable, Codable {
        /// Signal the session (or, in a dry run, say that it would).
        case act
        /// Leave it alone; `reason` says why.
        case skip
        /// A prepared transaction: only a person can COMMIT/ROLLBACK PREPARED it.
        case recommend
    }

    public var assessment: BlockerAssessment
    public var verdict: Verdict
    public var action: Action?
    public var reason: String
    public var dryRun: Bool

    /// The audit's word for it: would_terminate, terminate, skipped, recommend_only, …
    public var decision: String {
        switch verdict {
        case .act: (dryRun ? "would_" : "") + (action?.rawValue ?? "act")
        case .skip: "skipped"
        case .recommend: "recommend_only"
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
    /// Decides, for every blocker at or above `minSeverity` (and every prepared transaction
    /// blocking someone), whether to act. Pure: the caller executes, then tells `memory` what
    /// really happened.
    ///
    /// In order: prepared transactions are only recommended; only root blockers are acted on
    /// (ending a session that itself waits doesn't free anyone); then severity, blocking time,
    /// client backends only, never lockvault itself, superusers only if allowed, exclusions
    /// (role, application, database, client address); then escalation (an active blocker is
    /// cancelled first and terminated if it still blocks after `cancelGraceSeconds`; an idle
    /// one is terminated); then the per-cycle cap and the per-minute rate limit.
    public func decide(_ assessments: [BlockerAssessment], monitorPids: Set<Int32>, memory: ResolverMemory, now: Date) -> [ResolveDecision] {
        var decisions: [ResolveDecision] = []
        var actions = 0
        let recentTerminations = memory.terminations.filter { now.timeIntervalSince($0) < 60 }.count
        var terminationsThisCycle = 0
        for a in assessments {
            func skip(_ reason: String) { decisions.append(ResolveDecision(assessment: a, verdict: .skip, action: nil, reason: reason, dryRun: dryRun)) }
            if let prepared = a.preparedTransaction ?? (a.participant.pid == nil ? a.participant.preparedPlaceholder : nil) {
                decisions.append(ResolveDecision(assessment: a, verdict: .recommend, action: nil,
                                                 reason: "prepared transaction '\(prepared.gid)': COMMIT PREPARED or ROLLBACK PREPARED it; lockvault never ends prepared transactions",
                                                 dryRun: dryRun))
                continue
            }
            guard a.severity >= minSeverity else { continue }   // not a candidate: no decision to record
            guard let s = a.session, let start = s.backendStart else { skip("session identity unknown"); continue }
            if !a.isRoot { skip("waits for another blocker itself; ending it would not free its waiters"); continue }
            if a.blockingDurationSeconds < killThresholdSeconds {
                skip("blocking \(Int(a.blockingDurationSeconds)) s, below kill_threshold_seconds \(Int(killThresholdSeconds))"); continue
            }
            if !s.isClientBackend { skip("not a client backend (\(s.backendType))"); continue }
            if monitorPids.contains(s.pid) { skip("lockvault's own session"); continue }
            if s.isSuperuser && !allowSuperuser { skip("superuser session (resolve.allow_superuser is false)"); continue }
            if let p = excludeRoles.first(where: { Self.matches($0, s.user) }) { skip("excluded role (\(p))"); continue }
            if let p = excludeApplications.first(where: { Self.matches($0, s.applicationName) }) { skip("excluded application (\(p))"); continue }
            if let p = excludeDatabases.first(where: { Self.matches($0, s.database) }) { skip("excluded database (\(p))"); continue }
            if let p = excludeClientAddresses.first(where: { Self.matches($0, s.clientAddress) }) { skip("excluded client address (\(p))"); continue }

            let id = SessionID(pid: s.pid, backendStart: start)
            let action: ResolveDecision.Action
            var reason: String
            if s.state == .active {
                if let cancelled = memory.cancelledAt[id] {
                    let since = now.timeIntervalSince(cancelled)
                    if since < cancelGraceSeconds {
                        skip("cancelled \(Int(since)) s ago; terminating if it still blocks after cancel_grace_seconds \(Int(cancelGraceSeconds))"); continue
                    }
                    action = .terminate
                    reason = "still blocking \(Int(since)) s after pg_cancel_backend"
                } else {
                    action = .cancel
                    reason = "active blocker: cancel its query first"
                }
            } else {
                action = .terminate
                reason = "\(s.state) blocker holding locks"
            }
            reason += "; \(a.severity) blocking \(a.blockedCount) for \(Int(a.blockingDurationSeconds)) s"
            if actions >= maxActionsPerCycle { skip("per-cycle cap (max_actions_per_cycle \(maxActionsPerCycle)) reached"); continue }
            if action == .terminate && !dryRun && recentTerminations + terminationsThisCycle >= maxTerminationsPerMinute {
                skip("rate limit (max_terminations_per_minute \(maxTerminationsPerMinute)) reached"); continue
            }
            actions += 1
            if action == .terminate { terminationsThisCycle += 1 }
            decisions.append(ResolveDecision(assessment: a, verdict: .act, action: action, reason: reason, dryRun: dryRun))
        }
        return decisions
    }
}
