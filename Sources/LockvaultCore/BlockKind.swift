/// How one waiter waits for one blocker, in the words of PostgreSQL's deadlock.c.
///
/// `pg_blocking_pids()` names both kinds without telling them apart, and telling them apart is
/// what a DBA needs in the most common lock outage: a migration queued behind a long
/// transaction holds nothing, yet every later query on the table queues behind it. Cancelling
/// the queued request frees those queries at once; ending the holder is the other way out.
public enum BlockKind: String, Sendable, Hashable, Codable, CustomStringConvertible {
    /// The blocker holds a granted lock on the object the waiter wants, in a conflicting mode
    /// (for a transaction id or virtual transaction id: it holds that id).
    case hard
    /// The blocker holds nothing the waiter needs; it is ahead of the waiter in the lock's
    /// queue with a conflicting request of its own.
    case soft

    public var description: String { rawValue }

    /// The kind of the edge from the waiter whose requests are `waiting` (its ungranted locks,
    /// all members of its parallel group) to the blocker whose locks are `blockerLocks`
    /// (granted and waiting, all members of its group).
    ///
    /// Hard wins: a blocker that both holds a conflicting lock and is queued ahead is a holder
    /// for this waiter. When the locks show neither (the lock rows were not read, or the
    /// waiter waits on an object lockvault does not see), the edge is hard: that is what
    /// `pg_blocking_pids()` reports most often, and it never makes a session look cheaper to
    /// cancel than it is.
    public static func of(waiting: [LockRecord], blockerLocks: [LockRecord]) -> BlockKind {
        var queuedAhead = false
        for request in waiting where !request.granted {
            let target = request.target
            for lock in blockerLocks where lock.target == target {
                if lock.granted {
                    if lock.lockType.isTransactionIdentity || lock.mode.conflicts(with: request.mode) { return .hard }
                } else if lock.mode.conflicts(with: request.mode) {
                    queuedAhead = true
                }
            }
        }
        return queuedAhead ? .soft : .hard
    }
}

/// How a blocker blocks, over all its direct waiters: the dashboard's `blocks_as`.
public enum BlocksAs: String, Sendable, Hashable, Codable, CustomStringConvertible {
    /// Every waiter waits for a lock it holds.
    case holder
    /// Every waiter is queued behind its own request: it holds nothing they need.
    case queued
    /// Some of each.
    case holderAndQueued = "holder+queued"

    public init(kinds: some Sequence<BlockKind>) {
        var hard = false, soft = false
        for kind in kinds {
            if kind == .hard { hard = true } else { soft = true }
        }
        self = soft ? (hard ? .holderAndQueued : .queued) : .holder
    }

    public var description: String { rawValue }
    public var holds: Bool { self != .queued }
    public var queues: Bool { self != .holder }
}

extension LockType {
    /// A transaction's own identity lock: whoever holds it blocks every waiter on it, whatever
    /// the modes say (the waiter waits for the transaction to end).
    var isTransactionIdentity: Bool { self == .transactionid || self == .virtualxid }
}
