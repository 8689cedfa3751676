public import Foundation

/// Something that can hold up others: a session (by pid) or a prepared transaction (by gid).
public enum Participant: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    case session(Int32)
    case prepared(String)

    public var description: String {
        switch self {
        case .session(let pid): "pid \(pid)"
        case .prepared(let gid): "prepared transaction '\(gid)'"
        }
    }

    public var pid: Int32? {
        if case .session(let pid) = self { return pid }
        return nil
    }

    public static func < (lhs: Participant, rhs: Participant) -> Bool {
        switch (lhs, rhs) {
        case (.session(let a), .session(let b)): a < b
        case (.prepared(let a), .prepared(let b)): a < b
        case (.session, .prepared): true
        case (.prepared, .session): false
        }
    }
}

/// Who waits for whom, built from one snapshot. Pure: no I/O, unit-tested on hand-built
/// snapshots.
///
/// Edges run waiter → blocker, from `pg_blocking_pids()`, which counts both holders of
/// conflicting locks and sessions queued ahead for a conflicting mode. Parallel workers are
/// folded into their leader, so a parallel query appears as the one session it is. A blocker
/// reported as pid 0 is a prepared transaction; which one is found through the locks.
public struct WaitGraph: Sendable, Equatable {
    /// waiter → the participants it waits for.
    public let blockersOf: [Participant: Set<Participant>]
    /// blocker → the participants waiting for it directly.
    public let waitersOf: [Participant: Set<Participant>]
    /// When each waiting participant started to wait (earliest of its waits).
    public let waitStarts: [Participant: Date]
    /// Deadlocks in progress: sets of participants that wait for each other in a circle
    /// (strongly connected components of more than one node, or a node waiting for itself),
    /// each sorted, ordered by their first member. Found once, when the graph is built: the
    /// assessment, the root blockers and the deadlock tracker all read them every cycle.
    public let cycles: [[Participant]]
    /// Each edge's ``BlockKind``: whether the blocker holds what the waiter wants (hard) or is
    /// only queued ahead of it (soft). Decided here, once, from the cycle's own locks.
    public let kinds: [WaitEdge: BlockKind]

    public init(_ snapshot: LockSnapshot) {
        var blockersOf: [Participant: Set<Participant>] = [:]
        var waitStarts: [Participant: Date] = [:]
        var kinds: [WaitEdge: BlockKind] = [:]
        let leaderOf = Dictionary(snapshot.backends.map { ($0.pid, $0.sessionPid) }, uniquingKeysWith: { a, _ in a })
        let preparedResolver = PreparedBlockerResolver(snapshot)
        // Locks by the session they work for (a parallel group's locks under its leader): one
        // pass, so deciding an edge's kind never scans the whole lock list.
        var locksBySession: [Int32: [LockRecord]] = [:]
        var waitingByBackend: [Int32: [LockRecord]] = [:]
        for lock in snapshot.locks {
            guard let pid = lock.pid else { continue }
            locksBySession[leaderOf[pid] ?? pid, default: []].append(lock)
            if !lock.granted { waitingByBackend[pid, default: []].append(lock) }
        }

        for backend in snapshot.backends where !backend.blockedBy.isEmpty {
            let waiter = Participant.session(backend.sessionPid)
            for blockerPid in backend.blockedBy {
                let blocker: Participant
                if blockerPid == 0 {
                    blocker = .prepared(preparedResolver.gid(blocking: backend.pid) ?? "unknown")
                } else {
                    blocker = .session(leaderOf[blockerPid] ?? blockerPid)
                }
                if blocker != waiter {  // a parallel worker never waits for its own group
                    blockersOf[waiter, default: []].insert(blocker)
                    let edge = WaitEdge(waiter: waiter, blocker: blocker)
                    if kinds[edge] != .hard {
                        // A prepared transaction never waits: whatever blocks through it holds.
                        kinds[edge] = blocker.pid.map { pid in
                            snapshot.answeredKinds[backend.sessionPid]?[pid]
                                ?? BlockKind.of(waiting: waitingByBackend[backend.pid] ?? [], blockerLocks: locksBySession[pid] ?? [])
                        } ?? .hard
                    }
                }
            }
            let lockWait = snapshot.locks.filter { !$0.granted && $0.pid == backend.pid }.compactMap(\.waitStart).min()
            if let start = lockWait ?? backend.stateChange ?? backend.queryStart {
                waitStarts[waiter] = min(waitStarts[waiter] ?? start, start)
            }
        }
        var waitersOf: [Participant: Set<Participant>] = [:]
        for (waiter, blockers) in blockersOf {
            for blocker in blockers { waitersOf[blocker, default: []].insert(waiter) }
        }
        self.blockersOf = blockersOf
        self.waitersOf = waitersOf
        self.waitStarts = waitStarts
        self.kinds = kinds
        self.cycles = Self.stronglyConnectedCycles(blockersOf)
    }

    public var isEmpty: Bool { blockersOf.isEmpty }

    /// All waiter → blocker pairs, sorted.
    public var edges: [(waiter: Participant, blocker: Participant)] {
        blockersOf.flatMap { waiter, blockers in blockers.map { (waiter, $0) } }
            .sorted { ($0.waiter, $0.blocker) < ($1.waiter, $1.blocker) }
    }

    public func blockers(of waiter: Participant) -> Set<Participant> { blockersOf[waiter] ?? [] }

    /// How `waiter` waits for `blocker` (hard when they are not an edge of this graph).
    public func kind(waiter: Participant, blocker: Participant) -> BlockKind {
        kinds[WaitEdge(waiter: waiter, blocker: blocker)] ?? .hard
    }

    /// The waiters that wait for `blocker` only because it is queued ahead of them, and for no
    /// one else: cancelling its waiting statement grants them their locks (or moves them to
    /// the head of the queue), whatever else it holds.
    public func freedByCancelling(_ blocker: Participant) -> Set<Participant> {
        directlyBlocked(by: blocker).filter { kind(waiter: $0, blocker: blocker) == .soft && blockers(of: $0) == [blocker] }
    }
    public func directlyBlocked(by blocker: Participant) -> Set<Participant> { waitersOf[blocker] ?? [] }

    /// Everyone held up by `blocker`, directly or through a chain; each counted once even when
    /// reachable along several paths (diamonds), and never `blocker` itself.
    public func transitivelyBlocked(by blocker: Participant) -> Set<Participant> {
        var seen: Set<Participant> = []
        var stack = Array(directlyBlocked(by: blocker))
        while let next = stack.popLast() {
            guard next != blocker, seen.insert(next).inserted else { continue }
            stack.append(contentsOf: directlyBlocked(by: next))
        }
        return seen
    }

    /// Everyone who blocks at least one other participant.
    public var blockers: Set<Participant> { Set(waitersOf.keys) }

    /// Blockers that wait for no one: where a chain starts, and where acting helps. Members of
    /// a cycle with no root outside it are included too, since the cycle is then its own root.
    public var rootBlockers: [Participant] {
        var roots = blockers.filter { blockers(of: $0).isEmpty }
        for cycle in cycles {
            let members = Set(cycle)
            let fedFromOutside = cycle.contains { member in blockers(of: member).contains { !members.contains($0) } }
            if !fedFromOutside { roots.formUnion(members) }
        }
        return roots.sorted()
    }

    /// The root blockers `participant` waits behind, directly or through a chain (sorted; empty
    /// for a root): ending them ends the chain it is part of.
    public func roots(above participant: Participant) -> [Participant] {
        let roots = Set(rootBlockers)
        var seen: Set<Participant> = [participant]
        var found: Set<Participant> = []
        var stack = Array(blockers(of: participant))
        while let next = stack.popLast() {
            guard seen.insert(next).inserted else { continue }
            if roots.contains(next) { found.insert(next) }
            stack.append(contentsOf: blockers(of: next))
        }
        return found.sorted()
    }

    /// Longest time anyone under `blocker` has been waiting, in seconds.
    public func longestWait(under blocker: Participant, now: Date) -> Double {
        transitivelyBlocked(by: blocker).compactMap { waitStarts[$0] }.map { max(0, now.timeIntervalSince($0)) }.max() ?? 0
    }

    /// Tarjan's strongly connected components over waiter → blocker edges, keeping those that
    /// are cycles (more than one node, or a node waiting for itself).
    private static func stronglyConnectedCycles(_ blockersOf: [Participant: Set<Participant>]) -> [[Participant]] {
        func blockers(of v: Participant) -> Set<Participant> { blockersOf[v] ?? [] }
        var index = 0
        var indices: [Participant: Int] = [:]
        var lowlink: [Participant: Int] = [:]
        var onStack: Set<Participant> = []
        var stack: [Participant] = []
        var result: [[Participant]] = []

        func connect(_ v: Participant) {
            indices[v] = index
            lowlink[v] = index
            index += 1
            stack.append(v)
            onStack.insert(v)
            for w in blockers(of: v).sorted() {
                if indices[w] == nil {
                    connect(w)
                    lowlink[v] = min(lowlink[v]!, lowlink[w]!)
                } else if onStack.contains(w) {
                    lowlink[v] = min(lowlink[v]!, indices[w]!)
                }
            }
            if lowlink[v] == indices[v] {
                var component: [Participant] = []
                while let w = stack.popLast() {
                    onStack.remove(w)
                    component.append(w)
                    if w == v { break }
                }
                if component.count > 1 || blockers(of: v).contains(v) { result.append(component.sorted()) }
            }
        }
        for v in blockersOf.keys.sorted() where indices[v] == nil { connect(v) }
        return result.sorted { $0.first! < $1.first! }
    }

    /// Trees for display: each root blocker with its waiters, recursively. Each participant is
    /// expanded once (the first place it is reached, roots in order); where it is reached again
    /// it appears as a leaf marked `expandedElsewhere`. That keeps the forest linear in size:
    /// a queue of n waiters on one row has ~n²/2 edges (each waits for everyone ahead of it),
    /// and listing every path would explode.
    public var forest: [BlockingTree] {
        var expanded: Set<Participant> = []
        return rootBlockers.map { tree($0, expanded: &expanded) }
    }

    private func tree(_ node: Participant, expanded: inout Set<Participant>) -> BlockingTree {
        guard expanded.insert(node).inserted else { return BlockingTree(participant: node, waiters: [], expandedElsewhere: true) }
        var children: [BlockingTree] = []
        for child in directlyBlocked(by: node).sorted() {
            children.append(tree(child, expanded: &expanded))
        }
        return BlockingTree(participant: node, waiters: children)
    }
}

/// One waiter → blocker edge of the ``WaitGraph`` (made only by the graph: its memberwise init).
public struct WaitEdge: Sendable, Hashable {
    public var waiter: Participant
    public var blocker: Participant
}

/// One node of the blocking forest: a participant and those waiting for it.
public struct BlockingTree: Sendable, Hashable, Codable {
    public var participant: Participant
    public var waiters: [BlockingTree]
    /// Shown in full elsewhere in the forest (it waits for more than one blocker).
    public var expandedElsewhere: Bool

    public init(participant: Participant, waiters: [BlockingTree], expandedElsewhere: Bool = false) {
        self.participant = participant
        self.waiters = waiters
        self.expandedElsewhere = expandedElsewhere
    }
}

/// Finds which prepared transaction a waiter is stuck behind.
///
/// `pg_blocking_pids()` reports such a blocker as pid 0. Its locks have `pid IS NULL` and share
/// a `virtualtransaction` with the ExclusiveLock on its own transaction id, which is
/// `pg_prepared_xacts.transaction` — and that names the gid.
struct PreparedBlockerResolver {
    let gidByTransaction: [String: String]
    let transactionByVirtual: [String: String]
    let waitingTargets: [Int32: [LockTarget]]
    let orphanHolders: [LockTarget: [String]]   // target → virtualtransactions holding it
    let onlyGid: String?

    init(_ snapshot: LockSnapshot) {
        gidByTransaction = Dictionary(snapshot.preparedTransactions.map { ($0.transactionID, $0.gid) }, uniquingKeysWith: { a, _ in a })
        var tByV: [String: String] = [:]
        var holders: [LockTarget: [String]] = [:]
        for lock in snapshot.locks where lock.pid == nil && lock.granted {
            if lock.lockType == .transactionid, let vxid = lock.virtualTransaction, let xid = lock.transactionID {
                tByV[vxid] = xid
            }
            if let vxid = lock.virtualTransaction { holders[lock.target, default: []].append(vxid) }
        }
        transactionByVirtual = tByV
        orphanHolders = holders
        var waiting: [Int32: [LockTarget]] = [:]
        for lock in snapshot.locks where !lock.granted {
            if let pid = lock.pid { waiting[pid, default: []].append(lock.target) }
        }
        waitingTargets = waiting
        onlyGid = snapshot.preparedTransactions.count == 1 ? snapshot.preparedTransactions[0].gid : nil
    }

    func gid(blocking waiterPid: Int32) -> String? {
        for target in waitingTargets[waiterPid] ?? [] {
            if target.lockType == .transactionid, let xid = target.transactionID, let gid = gidByTransaction[xid] { return gid }
            for vxid in orphanHolders[target] ?? [] {
                if let xid = transactionByVirtual[vxid], let gid = gidByTransaction[xid] { return gid }
            }
        }
        return onlyGid
    }
}
