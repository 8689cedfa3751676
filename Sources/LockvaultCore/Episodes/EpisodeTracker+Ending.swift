import Foundation

extension EpisodeTracker {
    /// `e` has nobody waiting behind its root this cycle: its verdict, now or (a deadlock the
    /// server may still confirm) after ``deadlockGraceSeconds``.
    mutating func end(_ episode: Episode, facts: CycleFacts) -> [EpisodeEvent] {
        var e = episode
        let lastSeen = e.lastSeenAt
        // Nobody watched between the last sighting and now: nothing is known of how it ended.
        if facts.gap != nil {
            return finish(&e, .unobserved, at: lastSeen, now: facts.now)
        }
        // The resolver's signal, sent in the last cycle that saw the episode.
        let signalled = e.decisions.filter { $0.executed && $0.at >= lastSeen }
        let rootPid = e.root.pid
        if let d = signalled.first(where: { rootPid != nil && $0.pid == rootPid && ($0.action == "terminated" || $0.action == "terminate_timed_out") }) {
            return finish(&e, .rootTerminated, at: max(lastSeen, d.at), now: facts.now)
        }
        if let d = signalled.first(where: { rootPid != nil && $0.pid == rootPid && $0.action == "cancelled" }) {
            return finish(&e, .rootCancelled, at: max(lastSeen, d.at), now: facts.now)
        }
        if let d = signalled.first(where: { $0.pid != rootPid && $0.action == "cancelled" }) {
            return finish(&e, .queueCancelled, at: max(lastSeen, d.at), now: facts.now)
        }
        let (fate, endedAt) = rootFate(e, facts: facts)
        if confirmsDeadlock(facts.deadlocks, e) {
            return finish(&e, .deadlock, at: endedAt, now: facts.now)
        }
        let counterMoved = deadlockCounterMoved(facts, database: e.root.database)
        if e.rootSeen.inCycle || e.rootSeen.waiting || counterMoved {
            close(&e, at: endedAt)
            e.endedAt = endedAt
            pending.append((e, facts.now, fate))
            return []
        }
        return finish(&e, fate, at: endedAt, now: facts.now)
    }

    /// How the root fared, and when the episode ended by that account.
    func rootFate(_ e: Episode, facts: CycleFacts) -> (EpisodeEndedBy, Date) {
        let lastSeen = e.lastSeenAt
        switch e.root.participant {
        case .prepared(let gid):
            let held = facts.snapshot.preparedTransactions.contains { $0.gid == gid }
            return (held ? .waitersGaveUp : .rootFinished, lastSeen)
        case .session(let pid):
            let watched = facts.snapshot.watchedSessions
            // Not followed (a caller that does not watch): what the cycle's backends say.
            let now = watched.map { $0[pid] } ?? facts.backends[pid].map {
                WatchedSession(pid: pid, backendStart: $0.backendStart, transactionStart: $0.transactionStart, state: $0.state, stateChange: $0.stateChange)
            }
            guard let session = now, EpisodeRoot.sameInstant(session.backendStart, e.root.backendStart) else {
                if watched == nil && EpisodeRoot.sameInstant(facts.snapshot.sessionStarts[pid], e.root.backendStart) { return (.rootFinished, lastSeen) }
                return (.rootDisconnected, lastSeen)
            }
            if session.transactionStart != nil, EpisodeRoot.sameInstant(session.transactionStart, e.rootSeen.transactionStart),
               session.state != .idleInTransactionAborted {
                return (.waitersGaveUp, lastSeen)
            }
            // Its transaction ended: when its state last changed, if that was after the last sighting.
            var endedAt = lastSeen
            if let changed = session.stateChange, changed > lastSeen, changed <= facts.now { endedAt = changed }
            return (.rootFinished, endedAt)
        }
    }

    /// A deadlock the server confirmed among the episode's sessions (or, with no sessions
    /// named, counted in the root's database) around its end.
    func confirmsDeadlock(_ events: [DeadlockEvent], _ e: Episode) -> Bool {
        let pids = Set(e.waiters.map(\.pid) + [e.root.pid].compactMap { $0 })
        return events.contains { d in
            guard d.isConfirmed, d.detectedAt >= e.startedAt.addingTimeInterval(-60) else { return false }
            if !d.pids.isEmpty { return !d.pids.isDisjoint(with: pids) }
            return d.database.isEmpty || e.root.database == nil || d.database == e.root.database
        }
    }

    /// The deadlock counter of `database` (any database, when unknown) rose since the last cycle.
    func deadlockCounterMoved(_ facts: CycleFacts, database: String?) -> Bool {
        guard let last = lastDeadlockCounts else { return false }
        return facts.snapshot.deadlockCounts.contains { db, n in (database == nil || db == database) && n > (last[db] ?? n) }
    }

    /// Settles episodes waiting for a deadlock's confirmation: confirmed, or out of time.
    mutating func settlePending(facts: CycleFacts) -> [EpisodeEvent] {
        var events: [EpisodeEvent] = []
        var waiting: [(episode: Episode, since: Date, otherwise: EpisodeEndedBy)] = []
        for p in pending {
            var e = p.episode
            if confirmsDeadlock(facts.deadlocks, e) {
                events += finish(&e, .deadlock, at: e.endedAt ?? e.lastSeenAt, now: facts.now)
            } else if facts.now.timeIntervalSince(p.since) >= deadlockGraceSeconds {
                events += finish(&e, p.otherwise, at: e.endedAt ?? e.lastSeenAt, now: facts.now)
            } else {
                waiting.append(p)
            }
        }
        pending = waiting
        return events
    }

    /// Closes every wait still in progress at `t` (they waited to the end).
    func close(_ e: inout Episode, at t: Date) {
        for i in e.waiters.indices where e.waiters[i].isWaiting { e.waiters[i].close(at: t) }
    }

    mutating func finish(_ e: inout Episode, _ endedBy: EpisodeEndedBy, at endedAt: Date, now: Date) -> [EpisodeEvent] {
        close(&e, at: endedAt)
        e.endedAt = endedAt
        e.endedBy = endedBy
        e.waitingNow = 0
        recentlyEnded.append(e)
        return [.ended(e)]
    }
}
