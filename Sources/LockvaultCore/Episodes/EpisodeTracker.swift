public import Foundation

/// Turns each cycle's blocking into episodes: one root blocker's incident, from the first wait
/// behind it to the moment nobody waits behind it any more. A pure state machine (no clock, no
/// I/O): the snapshot's time is the clock, so tests drive it through scripted cycles. Call
/// ``observe(_:)`` only for cycles that sampled the target.
///
/// The definition (docs/operations.md, "Blocking episodes"):
/// - **Root.** A session or prepared transaction that blocks and waits for no one. An episode
///   begins when a root has someone waiting behind it, directly or through chains, soft edges
///   included (a session queued behind a queued request belongs to the root that request waits
///   for). Only waits the cycle resolved count, so a wait shorter than
///   `sampling.min_wait_seconds` makes no episode; the episode's start is the `waitstart` of
///   the first wait behind the root.
/// - **Membership.** Everyone behind the root, at any depth, is a waiter of its episode. A
///   waiter behind two roots is a waiter of both episodes (each root held it up; each
///   episode counts its wait).
/// - **Re-rooting.** An episode belongs to its root for life. When its root starts waiting
///   itself, its episode goes on while anyone waits behind it, and the new root gets an
///   episode of its own, whose waiters are the old root and everyone behind it. A waiter joins
///   the new root's episode when the chain above it reached that root (the latest `waitstart`
///   along the chain), so time spent behind the old root alone is not counted again.
/// - **Deadlock cycle.** A cycle with nobody outside it has no root: it stays in the episode one
///   of its members already had (the member that was a root until it closed the cycle). A cycle
///   first seen whole gets one episode, rooted at the member that began waiting last.
/// - **Gaps.** A gap (target lost, lockvault restarted) inside an episode changes nothing of
///   its identity: a waiter seen on both sides with the same `waitstart` waited throughout,
///   one gone after it waited until it was last seen. An episode with nobody waiting after
///   a gap ended unobserved, at the last moment lockvault saw it. After a restart, the
///   episodes the vault holds open are ``adopt(_:)``ed: one whose root still blocks in the
///   same transaction goes on with its id; the others end unobserved. The vault lists the
///   gaps inside each episode (monitor_gap_s).
/// - **End.** When nobody waits behind the root, ``EpisodeEndedBy`` in this order: unobserved
///   (the cycle closes a gap); the resolver's signal in the last cycle that saw it (root
///   terminated or cancelled, a queued request cancelled); a deadlock the server confirmed
///   among its sessions; else by the root's fate — its session gone (disconnected), still in the
///   same transaction (the waiters gave up), or the transaction over (finished). When a
///   deadlock is likely but not yet confirmed (a wait cycle among its sessions, its root seen
///   waiting, the root's database's deadlock counter moved), the verdict waits up to
///   ``deadlockGraceSeconds`` for the server's confirmation.
public struct EpisodeTracker: Sendable {
    /// How long an ended episode waits for a deadlock the server may still confirm.
    public var deadlockGraceSeconds: Double
    /// How long ended episodes are kept for the alerts that clear after them.
    public var keepEndedSeconds: Double
    public static let waiterQueryLength = 200
    public static let maxLockTargets = 20
    public static let maxDecisions = 50

    public private(set) var open: [Episode] = []
    /// Ended, waiting for the deadlock detector's word; with the verdict if it does not come.
    var pending: [(episode: Episode, since: Date, otherwise: EpisodeEndedBy)] = []
    /// Ended recently, newest last (for the cleared alerts).
    public internal(set) var recentlyEnded: [Episode] = []
    private var adopted: [RecordedEpisode] = []
    var lastDeadlockCounts: [String: Int64]?
    private let systemIdentifier: String?

    public init(deadlockGraceSeconds: Double = 5, keepEndedSeconds: Double = 900, systemIdentifier: String? = nil) {
        self.deadlockGraceSeconds = deadlockGraceSeconds
        self.keepEndedSeconds = keepEndedSeconds
        self.systemIdentifier = systemIdentifier
    }

    /// True until episodes were adopted or the first cycle showed none to adopt was asked for.
    public private(set) var wantsRecorded = true

    /// The episodes the vault holds open for this cluster (a restarted process): the next cycle
    /// continues those whose root still blocks in the same transaction and ends the others
    /// unobserved.
    public mutating func adopt(_ recorded: [RecordedEpisode]) {
        adopted = recorded
        wantsRecorded = false
    }

    /// The pids whose sessions the next snapshot should follow (``LockSnapshot/watchedSessions``):
    /// the roots of open episodes, so the cycle that sees an episode end knows how its root fared.
    public var watchedPids: [Int32] {
        Array(Set((open.map(\.root) + adopted.map(\.root)).compactMap(\.pid))).sorted()
    }

    /// Open, awaiting a deadlock's confirmation, and recently ended: what a cleared alert looks up.
    public var known: [Episode] { open + pending.map(\.episode) + recentlyEnded }

    /// The episode id: 16 hex digits of the vault hash of the cluster, the root's identity and
    /// transaction, and the episode's start. The same facts give the same id, in any process.
    public static func id(systemIdentifier: String, root: EpisodeRoot, startedAt: Date) -> String {
        let ts: (Date?) -> String? = { $0.map(VaultHash.timestamp) }
        let key = VaultHash.hashKey([systemIdentifier, "episode", root.pid.map(String.init), ts(root.backendStart), root.gid,
                                     ts(root.transactionStart), VaultHash.timestamp(startedAt)])
        return VaultHash.hex(Array(key.prefix(8)))
    }

    /// Feeds one sampled cycle; returns what happened to episodes, in order: the adopted ones
    /// that ended unobserved, the open ones' joins and ends, the new ones, then the ends that
    /// waited for a deadlock's confirmation.
    public mutating func observe(_ cycle: EpisodeCycle) -> [EpisodeEvent] {
        let facts = CycleFacts(cycle)
        let now = facts.now
        var events: [EpisodeEvent] = []

        // Episodes the vault had open before this process: those whose root still blocks in
        // the same transaction go on (below); the others ended while nobody watched.
        var resumable: [RecordedEpisode] = []
        for r in adopted {
            if facts.rootStillBlocks(r.root) {
                resumable.append(r)
            } else {
                let e = Episode(id: r.id, root: r.root, startedAt: r.startedAt, endedAt: r.lastSeenAt, endedBy: .unobserved,
                                lastSeenAt: r.lastSeenAt, resumed: true)
                events.append(.ended(e))
                recentlyEnded.append(e)
            }
        }
        adopted = []
        wantsRecorded = false

        // Open episodes: go on, or end.
        var stillOpen: [Episode] = []
        for var e in open {
            let members = facts.joinTimes(behind: e.root, notBefore: e.startedAt)
            if members.isEmpty {
                events += end(e, facts: facts)
            } else {
                events += update(&e, members: members, facts: facts, isNew: false)
                stillOpen.append(e)
            }
        }
        open = stillOpen

        // New roots (and deadlock cycles, which are their own root).
        for root in facts.newRoots(excluding: open.map(\.root)) {
            guard let identity = facts.identity(of: root) else { continue }
            var members = facts.joinTimes(behind: identity, notBefore: .distantPast)
            guard let first = members.values.min() else { continue }
            var e: Episode
            if let r = resumable.first(where: { $0.root.isSame(as: identity) && EpisodeRoot.sameInstant($0.root.transactionStart, identity.transactionStart) }) {
                e = Episode(id: r.id, root: identity, startedAt: min(r.startedAt, first), lastSeenAt: now, resumed: true)
                resumable.removeAll { $0.id == r.id }
            } else {
                let sysid = systemIdentifier ?? cycle.snapshot.systemIdentifier
                e = Episode(id: Self.id(systemIdentifier: sysid, root: identity, startedAt: first), root: identity, startedAt: first, lastSeenAt: now)
            }
            members = members.mapValues { max($0, e.startedAt) }
            _ = update(&e, members: members, facts: facts, isNew: true)
            events.append(.started(e))
            open.append(e)
        }
        // Adopted roots that still block but no longer as a root: their episode goes on too.
        for r in resumable {
            var e = Episode(id: r.id, root: r.root, startedAt: r.startedAt, lastSeenAt: now, resumed: true)
            let members = facts.joinTimes(behind: r.root, notBefore: r.startedAt)
            _ = update(&e, members: members, facts: facts, isNew: true)
            events.append(.started(e))
            open.append(e)
        }

        events += settlePending(facts: facts)
        recentlyEnded.removeAll { now.timeIntervalSince($0.endedAt ?? now) > keepEndedSeconds }
        if recentlyEnded.count > 500 { recentlyEnded.removeFirst(recentlyEnded.count - 500) }
        lastDeadlockCounts = cycle.snapshot.deadlockCounts
        return events
    }

    /// Folds one cycle's members (waiter → when it began to wait behind the root) into `e`.
    /// Returns a joined event for each new waiter (none for a new episode: its start has them).
    private mutating func update(_ e: inout Episode, members: [Participant: Date], facts: CycleFacts, isNew: Bool) -> [EpisodeEvent] {
        let now = facts.now
        var events: [EpisodeEvent] = []
        var present: Set<Int> = []
        // A long episode gathers many waiters: look them up by session, not by scanning.
        var index: [Int32: [Int]] = [:]
        for (i, w) in e.waiters.enumerated() { index[w.pid, default: []].append(i) }
        for (member, joined) in members.sorted(by: { ($0.value, $0.key) < ($1.value, $1.key) }) {
            guard case .session(let pid) = member else { continue }   // prepared transactions never wait
            let backend = facts.backends[pid]
            let lockWait = facts.graph.waitStarts[member] ?? joined
            let edges = facts.graph.blockers(of: member).map { EpisodeEdge(pid: $0.pid ?? 0, kind: facts.graph.kind(waiter: member, blocker: $0)) }
            if let i = index[pid]?.first(where: { e.waiters[$0].backendStart == backend?.backendStart }) {
                var w = e.waiters[i]
                if w.stretchStart != nil, w.lockWaitStart != lockWait { w.close(at: w.lastWaitAt) }
                if w.stretchStart == nil {
                    w.stretchStart = max(joined, w.lastWaitAt)
                    w.lockWaitStart = lockWait
                }
                w.lastWaitAt = now
                for edge in edges where !w.blockedBy.contains(edge) {
                    if edge.kind == .hard { w.blockedBy.removeAll { $0.pid == edge.pid } }
                    if !w.blockedBy.contains(where: { $0.pid == edge.pid }) { w.blockedBy.append(edge) }
                }
                e.waiters[i] = w
                present.insert(i)
            } else {
                let lock = facts.waitingLock(of: pid)
                var w = EpisodeWaiter(pid: pid, backendStart: backend?.backendStart, user: backend?.user, application: backend?.applicationName,
                                      query: backend?.query.map { String($0.prefix(Self.waiterQueryLength)) }, firstWaitAt: joined, lastWaitAt: now,
                                      waitedSeconds: 0, longestWaitSeconds: 0, blockedBy: edges.sorted { $0.pid < $1.pid },
                                      lockTarget: lock?.targetDescription, mode: lock?.mode.description)
                w.stretchStart = joined
                w.lockWaitStart = lockWait
                e.waiters.append(w)
                index[pid, default: []].append(e.waiters.count - 1)
                present.insert(e.waiters.count - 1)
                if !isNew { events.append(.joined(episodeID: e.id, startedAt: e.startedAt, waiter: w)) }
            }
        }
        // Those no longer waiting stopped after they were last seen waiting.
        for i in e.waiters.indices where !present.contains(i) && e.waiters[i].isWaiting {
            e.waiters[i].close(at: e.waiters[i].lastWaitAt)
        }

        accumulate(&e, members: members, facts: facts)
        return events
    }

    /// The episode-wide facts of one cycle: peak, severity, depth, targets, queued request,
    /// decisions, and the root as seen now.
    private func accumulate(_ e: inout Episode, members: [Participant: Date], facts: CycleFacts) {
        let now = facts.now
        let participants = Set(members.keys).union([e.root.participant])
        e.waitingNow = members.count
        if members.count > e.peakWaiting {
            e.peakWaiting = members.count
            e.peakAt = now
        }
        for a in facts.assessments where participants.contains(a.participant) {
            e.maxSeverity = max(e.maxSeverity, a.severity)
            if a.isQueuedRequest && a.participant != e.root.participant { e.queuedRequest = true }
        }
        e.deepestChain = max(e.deepestChain, facts.graph.longestChain(below: e.root.participant, within: Set(members.keys)))
        var targets = Set(e.lockTargets)
        for case .session(let pid) in members.keys {
            if let t = facts.waitingLock(of: pid)?.targetDescription { targets.insert(t) }
        }
        e.lockTargets = Array(targets.sorted().prefix(Self.maxLockTargets))
        for d in facts.decisions where participants.contains(d.participant) {
            let pid = d.participant.pid ?? 0
            let record = EpisodeDecisionRecord(at: now, action: d.action, pid: pid, executed: d.executed != nil, outcome: d.outcome)
            // A dry run decides again every cycle: one entry per change of decision.
            if let last = e.decisions.last(where: { $0.pid == pid }), last.action == record.action, last.outcome == record.outcome, !record.executed {
                continue
            }
            if e.decisions.count < Self.maxDecisions { e.decisions.append(record) }
        }
        e.lastSeenAt = now
        e.rootSeen = facts.rootFacts(e.root, members: Set(members.keys))
    }
}

extension EpisodeWaiter {
    /// Ends the wait in progress at `t`.
    mutating func close(at t: Date) {
        guard let start = stretchStart else { return }
        let seconds = max(0, t.timeIntervalSince(start))
        waitedSeconds += seconds
        longestWaitSeconds = max(longestWaitSeconds, seconds)
        lastWaitAt = max(lastWaitAt, t)
        stretchStart = nil
        lockWaitStart = nil
    }
}
