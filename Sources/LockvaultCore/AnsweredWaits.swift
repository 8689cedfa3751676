/// The kind of an edge that `pg_blocking_pids()` gave, told without pg_locks, from what
/// pg_stat_activity shows of both sides: which lock types (`wait_event` of a `Lock` wait) each
/// lock group waits for. `SnapshotQuery` applies the same rule to decide when it must read
/// pg_locks after all (its `undecided`); ``LockReadPlan`` explains when this way is taken.
///
/// Why it holds: a blocker is either a holder of a conflicting lock on what the waiter wants
/// (hard), or queued ahead of it for that same object with a conflicting request (soft), and a
/// process waits for one lock at a time. So:
/// - a blocker whose group waits for no lock holds: **hard**;
/// - a blocker whose group waits only for lock types the waiter's group does not wait for is
///   not in the waiter's queue: **hard**;
/// - on a transaction id, virtual transaction id or speculative-insertion token every waiter
///   asks ShareLock, which conflicts with no request: no one is queued ahead there, and a
///   blocker waiting for one too holds: **hard**;
/// - a waiter that waits only for a tuple lock, blocked by one that waits for a tuple lock too:
///   PostgreSQL holds a tuple lock only while it waits for the row's locker (heapam's
///   heap_acquire_tuplock, released before the statement moves on), never while it waits for
///   another tuple lock, so the blocker cannot hold the waiter's tuple: queued ahead, **soft**;
/// - anything else (both wait for relation locks, say: one may hold the waiter's table while it
///   waits for another) only pg_locks can tell; and a prepared transaction (`0`) is hard, but
///   which one it is only pg_locks says. For these the statement reads pg_locks.
/// `DifferentialLiveTests` checks the rule against the server's own answer and pg_locks.
public enum AnsweredWaits {
    /// Lock types whose waiters all ask ShareLock (lmgr.c: XactLockTableWait, VirtualXactLock,
    /// SpeculativeInsertionWait): no one is ever queued ahead of another there.
    public static let neverQueued: Set<String> = ["transactionid", "virtualxid", "spectoken"]

    /// - Parameters:
    ///   - waiterWaits: the lock types the waiter's lock group waits for.
    ///   - blocker: the blocker as `pg_blocking_pids()` names it (0: a prepared transaction).
    ///   - blockerWaits: the lock types the blocker's lock group waits for (empty: none).
    /// - Returns: the kind, or nil when only pg_locks can tell.
    public static func kind(waiterWaits: Set<String>, blocker: Int32, blockerWaits: Set<String>) -> BlockKind? {
        guard blocker != 0 else { return nil }
        let shared = waiterWaits.intersection(blockerWaits).subtracting(neverQueued)
        if shared.isEmpty { return .hard }
        if waiterWaits == ["tuple"] { return .soft }
        return nil
    }

    /// The kinds of the answered waits' edges, by waiter session and blocker (both named by their
    /// lock group's leader, as in ``WaitGraph``). An edge only pg_locks can tell is left out: the
    /// statement has read pg_locks for it, and the kind comes from the locks.
    /// - Parameters:
    ///   - answers: `pg_blocking_pids()` by waiting backend.
    ///   - backends: the cycle's backends (the waiters', the blockers' and their groups').
    public static func kinds(of answers: [Int32: [Int32]], backends: [BackendActivity]) -> [Int32: [Int32: BlockKind]] {
        var waits: [Int32: Set<String>] = [:]
        for b in backends where b.isWaitingOnLock { waits[b.sessionPid, default: []].insert(b.waitEvent ?? "") }
        let leaderOf = LockGroups.leaders(backends)
        var result: [Int32: [Int32: BlockKind]] = [:]
        for (waiter, blockers) in answers {
            let session = leaderOf[waiter] ?? waiter
            for blocker in blockers where blocker != session {
                if let kind = kind(waiterWaits: waits[session] ?? [], blocker: blocker, blockerWaits: waits[blocker] ?? []) {
                    result[session, default: [:]][blocker] = kind
                }
            }
        }
        return result
    }
}
