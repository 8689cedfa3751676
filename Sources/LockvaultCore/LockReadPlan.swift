public import Foundation

/// How one cycle learns the edges (waiter, blocker, kind) it needs, chosen before its statement
/// from what the cycle already knows. Pure: the snapshot reader asks, then executes.
///
/// Why: `pg_locks` (pg_lock_status) copies the whole lock table under all sixteen lock-manager
/// partition locks, so its cost grows with the locks held: about 1 µs a lock for the cycle's
/// filtered pass on the bench machine, 0.4 s at 400,000 locks (200 sessions × 2,000 partitions). `pg_blocking_pids(pid)`
/// takes the same partition locks but looks only at what its one waiter wants: its cost does
/// not grow with the locks held. The three ways (``LockRead``):
/// - **nothing** for waits already known and unchanged: the statement decides that itself,
///   whatever the plan (`SnapshotQuery`'s `carried`);
/// - **one pg_locks pass** (``Way/pgLocks``), filtered server-side to the objects waited for,
///   whenever a long wait is new: exact queue order, kinds, targets and modes at once;
/// - **`pg_blocking_pids()` for the new long waiters only** (``Way/blockingPids``), called
///   inside the same statement: the server's own blockers, their kinds by ``AnsweredWaits``.
///   Where that rule cannot tell a kind, the statement makes the pass after all, in the same
///   statement. What this way does not learn — the waited lock's target and mode, what the
///   blockers hold — the next full pass fills in (``lockTableReading``), which then comes sooner.
///
/// The rule: a pass is taken when it is cheap — it costs no more than `cheapPassSeconds`, or no
/// more than the calls it replaces — because it tells everything. Above that, new waits are
/// learnt by `pg_blocking_pids()`, and full passes (the lock-table reading) are spaced so that
/// they take at most `passShare` of one core: every `max(lock_table_check_interval_seconds,
/// cost / passShare)` seconds, or every `cost / passShare` while waits learnt by the calls
/// lack their details. A pass's cost is estimated from the rows pg_locks had at the last pass.
public struct LockReadPlan: Sendable, Equatable, CustomStringConvertible {
    /// How this cycle learns a long wait that is new.
    public enum Way: String, Sendable, Hashable, CaseIterable {
        /// One pg_locks pass, filtered to what the long waiters want.
        case pgLocks = "pg_locks"
        /// `pg_blocking_pids()` of each new long waiter, in the cycle's statement.
        case blockingPids = "blocking_pids"
    }

    /// How a new long wait is learnt this cycle.
    public var newWaits: Way
    /// A full pass this cycle: the lock table's use, every long transaction's lock fingerprint,
    /// every long wait's target and mode.
    public var lockTableReading: Bool

    public init(newWaits: Way, lockTableReading: Bool) {
        self.newWaits = newWaits
        self.lockTableReading = lockTableReading
    }

    public var description: String { newWaits.rawValue + (lockTableReading ? " + lock-table reading" : "") }

    /// What a cycle knows before its statement.
    public struct Facts: Sendable, Equatable {
        public var now: Date
        public var capabilities: ServerCapabilities
        /// Rows pg_locks had at the last pass; nil before the first.
        public var locksAtLastCount: Int?
        /// When the lock table was last read in full; nil before the first reading.
        public var lastLockTableReading: Date?
        /// `sampling.lock_table_check_interval_seconds`: the full reading's interval while passes are cheap.
        public var lockTableInterval: Double
        /// Long waits this cycle will resolve that are not known yet, as far as the cycle can tell
        /// (waits seen before that are old enough now). A wait that began since the last cycle
        /// is resolved at once when `min_wait_seconds` is 0, which nothing can foresee: at least 1
        /// is assumed.
        public var expectedNewWaits: Int
        /// Known waits learnt by `pg_blocking_pids()` whose target and mode no pass has read yet.
        public var unreadWaits: Int
        /// A way imposed (tests compare each way with the server); nil: by cost.
        public var forced: Way?

        public init(now: Date, capabilities: ServerCapabilities, locksAtLastCount: Int?, lastLockTableReading: Date?,
                    lockTableInterval: Double, expectedNewWaits: Int = 0, unreadWaits: Int = 0, forced: Way? = nil) {
            self.now = now
            self.capabilities = capabilities
            self.locksAtLastCount = locksAtLastCount
            self.lastLockTableReading = lastLockTableReading
            self.lockTableInterval = lockTableInterval
            self.expectedNewWaits = expectedNewWaits
            self.unreadWaits = unreadWaits
            self.forced = forced
        }
    }

    /// The constants of the rule, measured on the bench machine (docs/benchmarks.md, section 8).
    public struct Costs: Sendable, Equatable {
        /// Server time of a pass, per row of pg_locks (1 µs: the cycle's statement spent 0.4–0.5 s
        /// on a pass over 400,000 locks; `count(*) FROM pg_locks` alone, 0.2 s).
        public var lockSeconds: Double
        /// One `pg_blocking_pids()` call (0.1 ms: the B arm's 20 calls and pg_stat_activity scan
        /// a second took 0.1–0.25 % of a core).
        public var callSeconds: Double
        /// A pass at most this dear is always worth its detail (2 ms: about 2,000 locks).
        public var cheapPassSeconds: Double
        /// The share of one core that full passes may take when they are not cheap.
        public var passShare: Double

        public init(lockSeconds: Double = 0.000001, callSeconds: Double = 0.0001, cheapPassSeconds: Double = 0.002, passShare: Double = 0.001) {
            self.lockSeconds = lockSeconds
            self.callSeconds = callSeconds
            self.cheapPassSeconds = cheapPassSeconds
            self.passShare = passShare
        }

        public static let standard = Costs()
    }

    /// What a pass over `locks` rows of pg_locks is expected to cost, in seconds of server time.
    public static func passSeconds(locks: Int, costs: Costs = .standard) -> Double { Double(locks) * costs.lockSeconds }

    /// This cycle's plan.
    public static func choose(_ facts: Facts, costs: Costs = .standard) -> LockReadPlan {
        // Nothing counted yet (a first cycle, a new connection): the first reading counts.
        guard let locks = facts.locksAtLastCount, let lastReading = facts.lastLockTableReading else {
            return LockReadPlan(newWaits: facts.forced ?? .pgLocks, lockTableReading: true)
        }
        let pass = passSeconds(locks: locks, costs: costs)
        let calls = Double(max(1, facts.expectedNewWaits)) * costs.callSeconds
        let cheap = pass <= max(costs.cheapPassSeconds, calls)
        // Without waitstart a pass cannot order a queue: only the server's answer is exact.
        let way = facts.forced ?? (cheap && facts.capabilities.has(.waitStart) ? .pgLocks : .blockingPids)
        let since = facts.now.timeIntervalSince(lastReading)
        let spacing = cheap ? 0 : pass / costs.passShare
        // A forced way keeps what it learnt until the configured reading, so that it can be compared as carried too.
        let filling = facts.unreadWaits > 0 && since >= spacing && facts.forced == nil
        let due = since >= max(facts.lockTableInterval, spacing) || filling
        return LockReadPlan(newWaits: way, lockTableReading: due)
    }
}
