public import Foundation

/// The waits whose blockers pg_locks cannot tell: for these, and only these, lockvault asks the
/// server (`pg_blocking_pids()`), which reads the real wait queue.
///
/// Why: pg_locks has no queue position. ``LockQueue`` orders each object's waiters by
/// `waitstart`, which is the queue's order except where the server put someone elsewhere:
/// - ProcSleep (proc.c) puts a new waiter whose lock group already holds a lock on the object
///   *ahead* of the first waiter whose request conflicts with what it holds (and grants it at
///   once if nothing else conflicts). Every waiter on that object may then be in another
///   place than its `waitstart` says: the object is ambiguous.
/// - The deadlock detector (deadlock.c) rearranges a queue to break a soft deadlock, once a
///   waiter in it has waited `deadlock_timeout`. It can only do so where a soft edge exists
///   (two lock groups waiting on the object with conflicting requests), and only after the
///   later of the two has waited that long.
/// - A `waitstart` still NULL (the wait began an instant ago, or the backend has not filled it
///   in) has no place in the order.
/// Everything else is in `waitstart` order, and cheaper to read from the pg_locks pass the
/// cycle makes anyway. Pure: the snapshot reader applies it to the locks it read.
public enum AmbiguousWaits {
    /// Why an object's queue cannot be ordered by `waitstart`.
    public enum Reason: String, Sendable, Hashable, CustomStringConvertible {
        /// A waiter's lock group holds a granted lock on the object it waits for.
        case waiterHoldsTheObject = "waiter holds the object"
        /// Two groups wait on it with conflicting requests for longer than `deadlock_timeout`.
        case softEdgeOlderThanDeadlockTimeout = "soft edge older than deadlock_timeout"
        /// A wait on it has no `waitstart` yet.
        case waitStartUnknown = "waitstart unknown"

        public var description: String { rawValue }
    }

    /// - Parameters:
    ///   - waiters: the backends whose blockers the cycle needs.
    ///   - locks: the granted and waiting locks on the objects they wait for.
    ///   - leaderOf: a parallel worker's leader, by pid (a backend missing is its own group).
    ///   - now: when the locks were read.
    ///   - deadlockTimeout: the server's `deadlock_timeout`, in seconds.
    /// - Returns: the waiters (of `waiters`) that wait on an ambiguous object, with why.
    public static func find(waiters: some Sequence<Int32>, locks: [LockRecord], leaderOf: [Int32: Int32] = [:], now: Date,
                            deadlockTimeout: Double) -> [Int32: Reason] {
        func group(_ pid: Int32) -> Int32 { leaderOf[pid] ?? pid }
        var waitingOn: [LockTarget: [LockRecord]] = [:]
        var heldBy: [LockTarget: Set<Int32>] = [:]
        for lock in locks {
            guard let pid = lock.pid else { continue }
            if lock.granted { heldBy[lock.target, default: []].insert(group(pid)) } else { waitingOn[lock.target, default: []].append(lock) }
        }
        let settled = now.addingTimeInterval(-deadlockTimeout)
        var reasons: [LockTarget: Reason] = [:]
        for (target, waits) in waitingOn {
            let holders = heldBy[target] ?? []
            if waits.contains(where: { holders.contains(group($0.pid!)) }) {
                reasons[target] = .waiterHoldsTheObject
            } else if waits.contains(where: { $0.waitStart == nil }) {
                reasons[target] = .waitStartUnknown
            } else if hasSettledSoftEdge(waits, settled: settled, group: group) {
                reasons[target] = .softEdgeOlderThanDeadlockTimeout
            }
        }
        guard !reasons.isEmpty else { return [:] }
        let wanted = Set(waiters)
        var result: [Int32: Reason] = [:]
        for (target, reason) in reasons {
            for w in waitingOn[target] ?? [] where wanted.contains(w.pid!) { result[w.pid!] = result[w.pid!] ?? reason }
        }
        return result
    }

    /// Two groups waiting with conflicting requests, both since before `settled`.
    private static func hasSettledSoftEdge(_ waits: [LockRecord], settled: Date, group: (Int32) -> Int32) -> Bool {
        let old = waits.filter { ($0.waitStart ?? .distantFuture) <= settled }
        for (i, a) in old.enumerated() {
            for b in old[(i + 1)...] where group(a.pid!) != group(b.pid!) && a.mode.conflicts(with: b.mode) { return true }
        }
        return false
    }
}
