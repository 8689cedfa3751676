import Foundation

/// Who blocks whom, from one read of `pg_locks`: what `pg_blocking_pids()` answers, without
/// calling it.
///
/// Why: every `pg_blocking_pids()` call takes all sixteen lock-manager partition locks while it
/// copies what it needs, so calling it for each waiter stalls the lock manager once per waiter
/// per cycle — under contention, while the database is already in trouble. One `pg_locks` read
/// takes them once; the rest is this function.
///
/// The rule is the server's (lockfuncs.c, GetBlockerStatusData): a waiter is blocked by
/// - every other lock group holding a granted lock on the object it waits for, in a mode that
///   conflicts with the one it requests (hard);
/// - every other lock group waiting for the same object *ahead* of it in the queue, for a mode
///   that conflicts with its request (soft).
/// Members of one parallel group never block each other. A prepared transaction (`pid` NULL)
/// is reported as pid 0, as the server does.
///
/// `pg_locks` has no queue position; `waitstart` (PostgreSQL 14+) is when each waiter began to
/// wait, which is the queue's order. Two known differences: a process that already holds a
/// conflicting lock on the object is put ahead of earlier waiters (proc.c, ProcSleep), and a
/// `waitstart` still NULL (the wait began an instant ago) is taken as last in the queue.
public enum LockQueue {
    /// - Parameters:
    ///   - waiters: the backends whose blockers are wanted.
    ///   - locks: the granted and waiting locks on the objects they wait for (others are ignored).
    ///   - leaderOf: a parallel worker's leader, by pid (a backend missing is its own group).
    /// - Returns: each waiter's blockers, sorted, named by their lock group's leader like
    ///   `pg_blocking_pids()` (0 = a prepared transaction); a waiter with none found is absent.
    ///   A worker's blockers are keyed by the worker: ``LockGroups/fold(backends:locks:)`` moves
    ///   them to its leader.
    public static func blockers(of waiters: some Sequence<Int32>, locks: [LockRecord], leaderOf: [Int32: Int32] = [:]) -> [Int32: [Int32]] {
        var onTarget: [LockTarget: [LockRecord]] = [:]
        var waitingBy: [Int32: [LockRecord]] = [:]
        for lock in locks {
            onTarget[lock.target, default: []].append(lock)
            if !lock.granted, let pid = lock.pid { waitingBy[pid, default: []].append(lock) }
        }
        func group(_ pid: Int32?) -> Int32? { pid.map { leaderOf[$0] ?? $0 } }
        var result: [Int32: [Int32]] = [:]
        for waiter in waiters {
            var found: Set<Int32> = []
            let own = group(waiter)
            for request in waitingBy[waiter] ?? [] {
                let queuedAt = request.waitStart ?? .distantFuture
                for other in onTarget[request.target] ?? [] where other.pid == nil || group(other.pid) != own {
                    if other.granted {
                        if other.lockType.isTransactionIdentity || other.mode.conflicts(with: request.mode) { found.insert(group(other.pid) ?? 0) }
                    } else if let start = other.waitStart, start < queuedAt, other.mode.conflicts(with: request.mode), let pid = group(other.pid) {
                        found.insert(pid)
                    }
                }
            }
            if !found.isEmpty { result[waiter] = found.sorted() }
        }
        return result
    }
}
