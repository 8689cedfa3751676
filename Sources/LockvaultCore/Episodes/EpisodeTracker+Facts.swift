import Foundation

/// One cycle's facts, indexed once for the tracker: who stands behind whom, since when, and
/// what each waiter waits for.
struct CycleFacts {
    let now: Date
    let graph: WaitGraph
    let snapshot: LockSnapshot
    let assessments: [BlockerAssessment]
    let decisions: [EpisodeDecision]
    let deadlocks: [DeadlockEvent]
    let gap: ObservationGap?
    let backends: [Int32: BackendActivity]
    private let waitingLocks: [Int32: LockRecord]

    init(_ cycle: EpisodeCycle) {
        now = cycle.snapshot.capturedAt
        graph = cycle.graph
        snapshot = cycle.snapshot
        assessments = cycle.assessments
        decisions = cycle.decisions
        deadlocks = cycle.deadlocks
        gap = cycle.gap
        backends = Dictionary(cycle.snapshot.backends.map { ($0.pid, $0) }, uniquingKeysWith: { a, _ in a })
        var locks: [Int32: LockRecord] = [:]
        for lock in cycle.snapshot.locks where !lock.granted {
            guard let pid = lock.pid else { continue }
            if let known = locks[pid], known.mode >= lock.mode { continue }
            locks[pid] = lock
        }
        waitingLocks = locks
    }

    /// A waiter's waiting lock (its strongest request).
    func waitingLock(of pid: Int32) -> LockRecord? { waitingLocks[pid] }

    /// The root's participant in this cycle's graph, when it is the same session (a recycled
    /// pid is another session) or prepared transaction.
    func participant(of root: EpisodeRoot) -> Participant? {
        switch root.participant {
        case .prepared: return root.participant
        case .session(let pid):
            if let b = backends[pid], !EpisodeRoot.sameInstant(b.backendStart, root.backendStart) { return nil }
            return root.participant
        }
    }

    /// Everyone behind `root` now, with when each began to wait behind it: its own `waitstart`,
    /// or, when it waits through a chain, the latest `waitstart` along the chain (it was behind
    /// the root only once the whole chain was), the earliest over all chains; never before
    /// `notBefore`. Empty when the root is another session now.
    func joinTimes(behind root: EpisodeRoot, notBefore: Date) -> [Participant: Date] {
        guard let r = participant(of: root) else { return [:] }
        var joined: [Participant: Date] = [r: .distantPast]
        var work = [r]
        while let p = work.popLast() {
            for w in graph.directlyBlocked(by: p) where w != r {
                let candidate = max(graph.waitStarts[w] ?? now, joined[p]!)
                if let known = joined[w], known <= candidate { continue }
                joined[w] = candidate
                work.append(w)
            }
        }
        joined[r] = nil
        return joined.mapValues { max($0, notBefore) }
    }

    /// The roots that may begin an episode: blockers waiting for no one, and for each wait
    /// cycle nobody outside feeds, one member — the one that began waiting last (it was a root
    /// until its wait closed the cycle) — unless a member already roots an open episode.
    func newRoots(excluding open: [EpisodeRoot]) -> [Participant] {
        let openRoots = Set(open.compactMap { participant(of: $0) })
        var roots: [Participant] = []
        let inCycles = Set(graph.cycles.flatMap { $0 })
        for r in graph.rootBlockers where !inCycles.contains(r) && !openRoots.contains(r) {
            roots.append(r)
        }
        for cycle in graph.cycles {
            let members = Set(cycle)
            let fed = cycle.contains { graph.blockers(of: $0).contains { !members.contains($0) } }
            guard !fed, members.isDisjoint(with: openRoots) else { continue }
            if let last = cycle.max(by: { (graph.waitStarts[$0] ?? .distantPast, $1) < (graph.waitStarts[$1] ?? .distantPast, $0) }) {
                roots.append(last)
            }
        }
        return roots.sorted()
    }

    /// The root as seen now: identity, who runs it, what it runs.
    func identity(of root: Participant) -> EpisodeRoot? {
        switch root {
        case .session(let pid):
            guard let b = backends[pid] else { return nil }
            return EpisodeRoot(participant: root, pid: pid, backendStart: b.backendStart, user: b.user, application: b.applicationName,
                               client: b.clientAddress, database: b.database, state: b.state.description, transactionStart: b.transactionStart,
                               query: b.query, queryID: b.queryID)
        case .prepared(let gid):
            let p = snapshot.preparedTransactions.first { $0.gid == gid }
            return EpisodeRoot(participant: root, gid: gid, user: p?.owner, database: p?.database, state: "prepared",
                               transactionStart: p?.prepared)
        }
    }

    /// Whether `root` (a root the vault had open) still blocks someone in the same transaction.
    func rootStillBlocks(_ root: EpisodeRoot) -> Bool {
        guard let p = participant(of: root), !graph.directlyBlocked(by: p).isEmpty else { return false }
        if case .session(let pid) = p { return EpisodeRoot.sameInstant(backends[pid]?.transactionStart, root.transactionStart) }
        return true
    }

    /// What the end of an episode is judged by, as of this cycle.
    func rootFacts(_ root: EpisodeRoot, members: Set<Participant>) -> RootSeen {
        var seen = RootSeen()
        if case .session(let pid) = root.participant, let b = backends[pid] {
            seen.transactionStart = b.transactionStart
            seen.waiting = b.isWaitingOnLock
        } else {
            seen.transactionStart = root.transactionStart
        }
        let sessions = members.union([root.participant])
        seen.inCycle = graph.cycles.contains { !sessions.isDisjoint(with: $0) }
        return seen
    }
}

extension WaitGraph {
    /// The longest chain of waits below `root` among `members` (1: all wait for it directly).
    func longestChain(below root: Participant, within members: Set<Participant>) -> Int {
        var memo: [Participant: Int] = [:]
        var onPath: Set<Participant> = []
        func depth(_ p: Participant) -> Int {
            if let d = memo[p] { return d }
            guard onPath.insert(p).inserted else { return 0 }   // a cycle: counted once
            let d = directlyBlocked(by: p).filter { members.contains($0) && $0 != root }.map { 1 + depth($0) }.max() ?? 0
            onPath.remove(p)
            memo[p] = d
            return d
        }
        return depth(root)
    }
}
