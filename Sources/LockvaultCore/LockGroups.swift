/// Parallel workers as the server reports them: a lock group's waits and holds are its leader's.
///
/// Why: a parallel query's workers take and wait for locks under their own pids, but those
/// pids mean nothing to a DBA — they vanish when the query ends, no one can act on them, and
/// the session that waits (on IPC, for its workers) is the leader. `pg_blocking_pids()` "always
/// lists client-visible process IDs … even if the actual lock is held or awaited by a child
/// worker process", and reports the blockers of every member of the waiter's lock group
/// (lock.c, GetBlockerStatusData). lockvault does the same, once, where the snapshot is made,
/// so that edges, the tree, severity, counts, the resolver and the vault all name leaders.
public enum LockGroups {
    /// The leader of each backend's lock group (a worker's `leader_pid`; itself otherwise).
    public static func leaders(_ backends: [BackendActivity]) -> [Int32: Int32] {
        Dictionary(backends.map { ($0.pid, $0.sessionPid) }, uniquingKeysWith: { a, _ in a })
    }

    /// Folds every worker into its leader.
    /// - Parameters:
    ///   - backends: the cycle's backends, each with its own `blockedBy` (already in leaders).
    ///   - locks: the cycle's locks, under the pids that hold or await them.
    /// - Returns: the backends with each worker's blockers moved to its leader (the union over
    ///   the group, the group itself never among them; a worker blocks and waits for no one), and
    ///   the locks with each worker's lock under its leader's pid — one record per target, mode
    ///   and grant (a worker and its leader both holding AccessShareLock on a table hold one lock
    ///   as the group), a wait keeping its earliest `waitstart`.
    public static func fold(backends: [BackendActivity], locks: [LockRecord]) -> (backends: [BackendActivity], locks: [LockRecord]) {
        let leaderOf = leaders(backends)
        var blockersOfGroup: [Int32: Set<Int32>] = [:]
        for b in backends where !b.blockedBy.isEmpty {
            blockersOfGroup[b.sessionPid, default: []].formUnion(b.blockedBy.map { leaderOf[$0] ?? $0 })
        }
        var folded = backends
        for i in folded.indices {
            let pid = folded[i].pid
            if folded[i].sessionPid != pid {
                folded[i].blockedBy = []
            } else if let blockers = blockersOfGroup[pid] {
                folded[i].blockedBy = blockers.subtracting([pid]).sorted()
            }
        }
        guard backends.contains(where: { $0.sessionPid != $0.pid }) else { return (folded, locks) }

        struct Key: Hashable {
            var pid: Int32?
            var target: LockTarget
            var mode: LockMode
            var granted: Bool
        }
        var index: [Key: Int] = [:]
        var result: [LockRecord] = []
        result.reserveCapacity(locks.count)
        for lock in locks {
            var l = lock
            if let pid = lock.pid { l.pid = leaderOf[pid] ?? pid }
            // A prepared transaction's locks (pid NULL) are never a group's: kept as they are.
            guard l.pid != nil else { result.append(l); continue }
            let key = Key(pid: l.pid, target: l.target, mode: l.mode, granted: l.granted)
            if let at = index[key] {
                if let start = l.waitStart, result[at].waitStart.map({ start < $0 }) ?? true { result[at].waitStart = start }
                if lock.pid == l.pid { result[at].virtualTransaction = l.virtualTransaction }   // the leader's own vxid
                continue
            }
            index[key] = result.count
            result.append(l)
        }
        return (folded, result)
    }
}
