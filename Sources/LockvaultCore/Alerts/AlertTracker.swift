import Foundation

/// When to alert. Defaults: CRITICAL blockers only, a clear once the blocker has been gone for
/// 10 s, and a blocker that comes back within 10 minutes of its clear is not announced again.
public struct AlertPolicy: Sendable, Equatable {
    /// Blockers at or above this severity raise an alert.
    public var minSeverity: BlockerSeverity = .critical
    /// How long a blocker must stay gone (or below ``minSeverity``) before "cleared" is sent.
    /// Hysteresis: a blocker that drops out for one cycle doesn't page twice.
    public var clearAfterSeconds: Double = 10
    /// A blocker (same pid and backend_start) raised again within this time after its clear is
    /// flapping: its new raise, escalations and clear are suppressed (counted, logged).
    public var flapWindowSeconds: Double = 600
    /// Query texts in alerts are cut to this many characters.
    public var queryTextLength: Int = 1000
    public static let maxListedSessions = 20

    public init() {}
}

/// Turns each cycle's blockers and deadlocks into alerts: one per state change, never one per
/// cycle.
///
/// A pure state machine (no clock, no I/O): the caller passes the snapshot's time, so tests
/// drive it through any sequence of cycles. Call ``observe(_:assessments:deadlocks:)`` only for
/// cycles that sampled the target: a cycle that saw nothing must not clear anything.
public struct AlertTracker: Sendable {
    /// What one incident is about. Sessions by (pid, backend_start): a recycled pid is a new
    /// incident.
    enum Subject: Hashable, Sendable {
        case session(pid: Int32, backendStart: Date?)
        case prepared(gid: String)
    }

    struct Incident: Sendable {
        var alertID: String
        var severity: BlockerSeverity
        var goneSince: Date?
        var suppressed: Bool
        var last: Alert
    }

    public var policy: AlertPolicy
    public let cluster: String
    private(set) var open: [Subject: Incident] = [:]
    private var recentlyCleared: [Subject: Date] = [:]
    private var seenDeadlocks: [String] = []
    private var seenDeadlockSet: Set<String> = []
    /// Alerts withheld because their blocker was flapping (since the tracker started).
    public private(set) var suppressedCount = 0

    public init(policy: AlertPolicy = AlertPolicy(), cluster: String) {
        self.policy = policy
        self.cluster = cluster
    }

    /// Feeds one sampled cycle; returns the alerts to send, raises and escalations first (worst
    /// first), then clears, then deadlocks. `episodes` are the blocking episodes open or ended
    /// recently (``EpisodeTracker/known``): a clear carries the one its blocker was part of.
    public mutating func observe(_ snapshot: LockSnapshot, assessments: [BlockerAssessment], deadlocks: [DeadlockEvent],
                                 episodes: [Episode] = []) -> [Alert] {
        let now = snapshot.capturedAt
        var out: [Alert] = []
        var present: Set<Subject> = []

        for a in assessments where a.severity >= policy.minSeverity {
            let subject = Self.subject(of: a)
            present.insert(subject)
            if var incident = open[subject] {
                incident.goneSince = nil
                if a.severity > incident.severity {
                    let alert = makeAlert(.escalated, a, snapshot: snapshot, id: incident.alertID, previous: incident.severity)
                    incident.severity = a.severity
                    incident.last = alert
                    if incident.suppressed { suppressedCount += 1 } else { out.append(alert) }
                }
                open[subject] = incident
                continue
            }
            let id = alertID(for: subject, snapshot: snapshot)
            let alert = makeAlert(.raised, a, snapshot: snapshot, id: id, previous: nil)
            let flapping = recentlyCleared[subject].map { now.timeIntervalSince($0) < policy.flapWindowSeconds } ?? false
            open[subject] = Incident(alertID: id, severity: a.severity, goneSince: nil, suppressed: flapping, last: alert)
            if flapping { suppressedCount += 1 } else { out.append(alert) }
        }

        for (subject, var incident) in open.sorted(by: { $0.value.alertID < $1.value.alertID }) where !present.contains(subject) {
            let since = incident.goneSince ?? now
            if now.timeIntervalSince(since) >= policy.clearAfterSeconds {
                open[subject] = nil
                recentlyCleared[subject] = now
                var alert = incident.last
                alert.kind = .cleared
                alert.at = now
                alert.previousSeverity = incident.severity
                alert.summary = "cleared: " + Self.who(alert.blocker) + " no longer blocks at \(policy.minSeverity) or above"
                if let e = Self.episode(of: subject, in: episodes) {
                    let episode = AlertEpisode(e)
                    alert.episode = episode
                    alert.summary += "; episode \(e.id): \(episode.waitingSessions) session\(episode.waitingSessions == 1 ? "" : "s") waited "
                        + "\(Int(episode.waitSecondsTotal.rounded())) s in all over \(Int(episode.durationSeconds.rounded())) s"
                        + (episode.endedBy.map { ", \($0)" } ?? ", still open")
                }
                if incident.suppressed { suppressedCount += 1 } else { out.append(alert) }
            } else {
                incident.goneSince = since
                open[subject] = incident
            }
        }
        recentlyCleared = recentlyCleared.filter { now.timeIntervalSince($0.value) < policy.flapWindowSeconds }

        for d in deadlocks where !seenDeadlockSet.contains(d.eventKey) {
            remember(deadlock: d.eventKey)
            out.append(deadlockAlert(d, snapshot: snapshot))
        }
        return out
    }

    /// The episode `subject` was part of: the latest rooted at it, else the latest it waited in.
    static func episode(of subject: Subject, in episodes: [Episode]) -> Episode? {
        let latest = { (a: Episode, b: Episode) in a.startedAt < b.startedAt }
        switch subject {
        case .prepared(let gid):
            return episodes.filter { $0.root.gid == gid }.max(by: latest)
        case .session(let pid, let start):
            if let e = episodes.filter({ $0.root.pid == pid && EpisodeRoot.sameInstant($0.root.backendStart, start) }).max(by: latest) { return e }
            return episodes.filter { $0.waiters.contains { $0.pid == pid && EpisodeRoot.sameInstant($0.backendStart, start) } }.max(by: latest)
        }
    }

    private mutating func remember(deadlock key: String) {
        seenDeadlocks.append(key)
        seenDeadlockSet.insert(key)
        if seenDeadlocks.count > 1000 {
            seenDeadlockSet.remove(seenDeadlocks.removeFirst())
        }
    }

    static func subject(of a: BlockerAssessment) -> Subject {
        switch a.participant {
        case .session(let pid): .session(pid: pid, backendStart: a.session?.backendStart)
        case .prepared(let gid): .prepared(gid: gid)
        }
    }

    func alertID(for subject: Subject, snapshot: LockSnapshot) -> String {
        switch subject {
        case .session(let pid, let start):
            VaultHash.hex(VaultHash.hashKey([snapshot.systemIdentifier, "blocker", String(pid), start.map(VaultHash.timestamp)]))
        case .prepared(let gid):
            VaultHash.hex(VaultHash.hashKey([snapshot.systemIdentifier, "prepared", gid,
                                             snapshot.preparedTransactions.first { $0.gid == gid }.map { VaultHash.timestamp($0.prepared) }]))
        }
    }

    func truncate(_ text: String?) -> String? {
        guard let text else { return nil }
        return text.count > policy.queryTextLength ? String(text.prefix(policy.queryTextLength)) + "…" : text
    }

    func makeAlert(_ kind: Alert.Kind, _ a: BlockerAssessment, snapshot: LockSnapshot, id: String, previous: BlockerSeverity?) -> Alert {
        let now = snapshot.capturedAt
        var blocker = AlertBlocker()
        if let s = a.session {
            blocker.pid = s.pid
            blocker.backendStart = s.backendStart
            blocker.user = s.user
            blocker.database = s.database
            blocker.applicationName = s.applicationName
            blocker.clientAddress = s.clientAddress
            blocker.state = s.state.description
            blocker.transactionSeconds = s.transactionStart.map { max(0, now.timeIntervalSince($0)) }
            blocker.query = truncate(s.query)
        } else if let p = a.preparedTransaction {
            blocker.preparedGid = p.gid
            blocker.user = p.owner
            blocker.database = p.database
            blocker.state = "prepared"
            blocker.transactionSeconds = max(0, now.timeIntervalSince(p.prepared))
        } else if case .prepared(let gid) = a.participant {
            blocker.preparedGid = gid
            blocker.state = "prepared"
        }
        let blocked = a.transitivelyBlocked.prefix(AlertPolicy.maxListedSessions).map { pid -> AlertBlockedSession in
            let s = snapshot.backend(pid)
            let waiting = snapshot.locks.first { $0.pid == pid && !$0.granted }?.waitStart ?? s?.stateChange
            return AlertBlockedSession(pid: pid, user: s?.user, applicationName: s?.applicationName,
                                       waitingSeconds: waiting.map { max(0, now.timeIntervalSince($0)) }, query: truncate(s?.query))
        }
        let verb = switch kind {
        case .raised: "\(a.severity) blocker"
        case .escalated: "escalated to \(a.severity)"
        case .cleared: "cleared"
        case .deadlock: "deadlock"
        }
        let on = a.relationName ?? a.contendedTarget
        let sessions = "\(a.blockedCount) session\(a.blockedCount == 1 ? "" : "s")"
        let how = a.isQueuedRequest && !a.blocksAs.holds
            ? "is queued ahead of \(sessions)\(a.queuedForMode.map { " for \($0)" } ?? "")"
            : "blocks \(sessions)"
        let summary = "\(verb): \(Self.who(blocker)) \(how) for \(Int(a.blockingDurationSeconds)) s"
            + (on.map { " on \($0)" } ?? "") + (cluster.isEmpty ? "" : " [\(cluster)]")
        return Alert(alertID: id, kind: kind, severity: a.severity, previousSeverity: previous, at: now, cluster: cluster, summary: summary,
                     blocker: blocker, blockedCount: a.blockedCount, blockedSessions: Array(blocked), blockingSeconds: a.blockingDurationSeconds,
                     relation: a.relationName, lockMode: (a.heldMode ?? (a.isQueuedRequest ? a.queuedForMode : nil))?.description,
                     blocksAs: a.blocksAs.rawValue, recommendedAction: a.recommendedAction, deadlock: nil)
    }

    static func who(_ b: AlertBlocker?) -> String {
        guard let b else { return "blocker" }
        if let gid = b.preparedGid { return "prepared transaction '\(gid)'" }
        var s = "pid \(b.pid.map(String.init) ?? "?")"
        let detail = [b.user.map { "user \($0)" }, b.database.map { "db \($0)" }, b.applicationName.flatMap { $0.isEmpty ? nil : "app \($0)" }].compactMap { $0 }
        if !detail.isEmpty { s += " (" + detail.joined(separator: ", ") + ")" }
        return s
    }

    func deadlockAlert(_ d: DeadlockEvent, snapshot: LockSnapshot) -> Alert {
        let id = VaultHash.hex(VaultHash.hashKey([snapshot.systemIdentifier, "deadlock", d.eventKey]))
        let pids = d.pids.sorted()
        let victim = d.victimPid.map { ", victim pid \($0)" } ?? ""
        let who = pids.isEmpty ? "" : " between pids \(pids.map(String.init).joined(separator: ", "))"
        let place = d.database.isEmpty ? "a database the server log did not name" : "database \(d.database)"
        let window = d.occurredAfter.map {
            " between \(VaultHash.timestamp($0)) and \(VaultHash.timestamp(d.detectedAt)) (counted while lockvault was not sampling; participants unknown)"
        } ?? ""
        let summary = "deadlock in \(place)\(who)\(victim)\(window)" + (cluster.isEmpty ? "" : " [\(cluster)]")
        let detail = AlertDeadlock(database: d.database, pids: pids, victimPid: d.victimPid,
                                   details: d.details.map { $0.count > 4 * policy.queryTextLength ? String($0.prefix(4 * policy.queryTextLength)) + "…" : $0 },
                                   sources: d.sources.sorted().map(\.rawValue))
        return Alert(alertID: id, kind: .deadlock, severity: .critical, previousSeverity: nil, at: d.detectedAt, cluster: cluster, summary: summary,
                     blocker: nil, blockedCount: 0, blockedSessions: [], blockingSeconds: nil, relation: nil, lockMode: nil,
                     recommendedAction: "PostgreSQL already ended it by cancelling the victim; fix the lock order in the application (see details)",
                     deadlock: detail)
    }
}
