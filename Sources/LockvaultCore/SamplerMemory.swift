public import Foundation

/// What the sampler remembers from one cycle to the next so that the next cycle reads only what
/// changed, and what it hands the next cycle's statement (see `SnapshotQuery`).
///
/// Why: at 200 backends, turning every pg_stat_activity row into JSON every second cost 6× a
/// read of pg_locks although only waiters, blockers, long transactions and prepared
/// transactions are used. So the statement returns a backend only when it matters *and* is
/// not already known unchanged; this value carries the rest:
/// - a long transaction's backend row, read when it crossed the hold threshold (or its state
///   last changed), is valid while `(pid, xact_start)` is the same and its `state_change` is
///   older than the previous capture — the statement returns it again the moment either moves;
/// - a session's database never changes on a connection: it is learnt once, when the session
///   is new since the previous capture, and the whole map is re-read with the once-a-minute
///   lock-table reading (which drops sessions that ended).
///
/// A value: events in (`absorb`), what to read next out (`previousCapture`). No I/O, no clock.
public struct SamplerMemory: Sendable {
    /// Backend rows of long transactions, by pid, with their `xact_start`.
    public private(set) var longTransactions: [Int32: BackendActivity] = [:]
    /// Every session's database seen since the last full reading, by pid.
    public private(set) var sessionDatabases: [Int32: String] = [:]
    /// The same sessions' `backend_start`, by pid (see ``LockSnapshot/sessionStarts``).
    public private(set) var sessionStarts: [Int32: Date] = [:]
    /// When the last successful cycle captured; nil before the first (= read everything).
    public private(set) var previousCapture: Date?
    /// Waiters whose lock details were read, with the waiting locks read.
    public private(set) var waits: [Int32: (key: WaitKey, locks: [LockRecord])] = [:]
    /// Blockers' locks as last read, by pid (0: the locks of prepared transactions, which have no pid).
    public private(set) var blockerLocks: [Int32: [LockRecord]] = [:]
    /// The kinds of the known waits that `pg_blocking_pids()` answered (``AnsweredWaits``), by
    /// waiting session and blocker: carried with the waits until a pass over pg_locks reads them.
    public private(set) var answeredKinds: [Int32: [Int32: BlockKind]] = [:]

    /// What identifies one lock wait without reading pg_locks: the session, the statement, what it
    /// waits for in pg_stat_activity's words, and the blockers found when its locks were last read
    /// (and which of them were themselves waiting). While the wait is the same and none of its
    /// blockers changed in pg_stat_activity (no new statement or state, waiting as before), the
    /// waiter's locks and blockers and its blockers' locks are taken as unchanged: a session that
    /// holds nothing it needs cannot come to block it without waiting itself, behind it. What this
    /// can miss: a statement that, after one lock was granted, waits for another of the same kind
    /// behind the same blockers — its details are then up to one lock-table cycle (a minute) old,
    /// since that cycle re-reads every waiter.
    public struct WaitKey: Sendable, Hashable {
        public var pid: Int32
        public var backendStart: Date?
        public var queryStart: Date?
        public var waitEvent: String?
        /// Sorted.
        public var blockedBy: [Int32]
        /// The blockers that were waiting for a lock themselves (queued ahead, or in a chain).
        public var waitingBlockers: Set<Int32>

        public init(_ b: BackendActivity, waitingBlockers: Set<Int32> = []) {
            pid = b.pid
            backendStart = b.backendStart
            queryStart = b.queryStart
            waitEvent = b.waitEvent
            blockedBy = b.blockedBy.sorted()
            self.waitingBlockers = waitingBlockers.intersection(b.blockedBy)
        }
    }

    /// One lock wait as pg_stat_activity shows it, without pg_locks: enough to tell the same wait
    /// from one cycle to the next, and so how long it has lasted at least.
    public struct WaitSighting: Sendable, Hashable {
        public var pid: Int32
        public var backendStart: Date?
        public var queryStart: Date?
        public var waitEvent: String?

        public init(pid: Int32, backendStart: Date?, queryStart: Date?, waitEvent: String?) {
            self.pid = pid
            self.backendStart = backendStart
            self.queryStart = queryStart
            self.waitEvent = waitEvent
        }
    }

    /// When each lock wait of the last cycle was first seen. A wait lasts at least from then;
    /// waits younger than `sampling.min_wait_seconds` are counted, not resolved.
    public private(set) var waitFirstSeen: [WaitSighting: Date] = [:]

    /// The waits that were resolved once: they stay resolved while they last (a daemon's first
    /// cycle resolves every wait it sees, not knowing their ages, and a wait must not flap).
    public private(set) var resolvedWaits: Set<WaitSighting> = []

    /// The cycle's lock waits (all of them, short or not), and the pids of those it resolved:
    /// remembers when each was first seen and forgets those that ended. Returns the longest of
    /// the waits not resolved, as long as they have been seen, in seconds.
    public mutating func sighted(_ waits: [WaitSighting], resolved: Set<Int32>, at capturedAt: Date) -> Double {
        var next: [WaitSighting: Date] = [:]
        var nextResolved: Set<WaitSighting> = []
        next.reserveCapacity(waits.count)
        var longest = 0.0
        for w in waits {
            let first = waitFirstSeen[w] ?? capturedAt
            next[w] = first
            if resolved.contains(w.pid) || resolvedWaits.contains(w) {
                nextResolved.insert(w)
            } else {
                longest = max(longest, capturedAt.timeIntervalSince(first))
            }
        }
        waitFirstSeen = next
        resolvedWaits = nextResolved
        return longest
    }

    /// The waits the next statement may take as known (it reads pg_locks when any current waiter
    /// is not among them).
    public var knownWaits: [WaitKey] { waits.values.map(\.key).sorted { $0.pid < $1.pid } }

    /// The waiting locks a pass read for this same wait (the same session, statement and wait
    /// event), if the wait is known: a wait learnt again only because something about its
    /// blockers changed keeps what it waits for.
    public func readLocks(ofTheSameWait b: BackendActivity) -> [LockRecord]? {
        guard let known = waits[b.pid], known.key.backendStart == b.backendStart, known.key.queryStart == b.queryStart,
              known.key.waitEvent == b.waitEvent, !known.locks.isEmpty, !known.locks.contains(where: \.isUnread) else { return nil }
        return known.locks
    }

    /// Known waits whose target and mode no pass over pg_locks has read yet (they were answered
    /// by `pg_blocking_pids()`).
    public var unreadWaits: Int { waits.values.filter { $0.locks.contains(where: \.isUnread) }.count }

    /// How many of the waits seen so far and not resolved yet are at least `age` seconds old at
    /// `now`: those the next cycle will resolve, as far as it can tell beforehand (``LockReadPlan``).
    public func waitsResolvedNext(at now: Date, age: Double) -> Int {
        waitFirstSeen.filter { w, first in !resolvedWaits.contains(w) && now.timeIntervalSince(first) >= age }.count
    }

    /// One cycle's locks. When the statement read pg_locks (`locksRead`), what it returned is
    /// remembered for the waiters and blockers of `backends`; when it didn't (every waiter was
    /// known and unchanged), the remembered locks of the current waiters and blockers are added
    /// to `locks` (those of pids already in `locks`, e.g. long transactions, are not repeated).
    /// - Returns: the cycle's locks.
    ///
    /// `longWaiters`: the waits old enough to resolve (nil: every waiter of `backends`). Blockers
    /// are lock groups, named by their leader (``LockGroups``): a blocker's locks are its group's.
    ///
    /// `answered`: the waiters whose blockers `pg_blocking_pids()` gave this cycle, without a
    /// pass (`locksRead` false): their waiting locks in `locks` (not read yet) and `kinds` (by
    /// waiting session and blocker) are remembered as this cycle's; their blockers' locks are what
    /// was remembered of them, or what `locks` holds of them.
    public mutating func absorbLocks(backends: [BackendActivity], locks: [LockRecord], locksRead: Bool, longWaiters: Set<Int32>? = nil,
                                     answered: Set<Int32> = [], kinds: [Int32: [Int32: BlockKind]] = [:]) -> [LockRecord] {
        let waiters = backends.filter { $0.isWaitingOnLock && longWaiters?.contains($0.pid) != false }.sorted { $0.pid < $1.pid }
        let blockers = Set(waiters.flatMap(\.blockedBy))
        let leaderOf = LockGroups.leaders(backends)
        func group(_ pid: Int32?) -> Int32 { pid.map { leaderOf[$0] ?? $0 } ?? 0 }
        var result = locks
        // Indexed only when something is taken from this cycle's locks (a carried cycle with
        // thousands of long-transaction locks takes nothing).
        var byPid: [Int32: [LockRecord]] = [:]
        var byGroup: [Int32: [LockRecord]] = [:]
        if locksRead || !answered.isEmpty {
            for l in locks {
                byPid[l.pid ?? 0, default: []].append(l)
                byGroup[group(l.pid), default: []].append(l)
            }
        }
        let waiting = Set(backends.filter(\.isWaitingOnLock).map { group($0.pid) })
        if locksRead {
            waits = Dictionary(waiters.map { w in (w.pid, (WaitKey(w, waitingBlockers: waiting), (byPid[w.pid] ?? []).filter { !$0.granted })) },
                               uniquingKeysWith: { a, _ in a })
            blockerLocks = Dictionary(blockers.map { ($0, byGroup[$0] ?? []) }, uniquingKeysWith: { a, _ in a })
            answeredKinds = [:]
            return result
        }
        // Present already (e.g. a long transaction's granted locks, carried by the reader): not repeated.
        let waitingPresent = Set(locks.filter { !$0.granted }.map { $0.pid ?? 0 })
        let grantedPresent = Set(locks.filter(\.granted).map { group($0.pid) })
        var keptWaits: [Int32: (key: WaitKey, locks: [LockRecord])] = [:]
        var keptKinds: [Int32: [Int32: BlockKind]] = [:]
        for w in waiters {
            let session = group(w.pid)
            if answered.contains(w.pid) {
                keptWaits[w.pid] = (WaitKey(w, waitingBlockers: waiting), (byPid[w.pid] ?? []).filter { !$0.granted })
                if let k = kinds[session] { keptKinds[session] = k }
                continue
            }
            guard let known = waits[w.pid] else { continue }
            keptWaits[w.pid] = known
            if let k = answeredKinds[session], keptKinds[session] == nil { keptKinds[session] = k }
            if !waitingPresent.contains(w.pid) { result += known.locks }
        }
        var keptBlockers: [Int32: [LockRecord]] = [:]
        for b in blockers.sorted() {
            guard let known = blockerLocks[b] else {
                // A blocker of an answered wait, new: only what this cycle has of it (a long
                // transaction's remembered locks) until a pass reads it.
                keptBlockers[b] = (byGroup[b] ?? []).filter(\.granted)
                continue
            }
            keptBlockers[b] = known
            // A blocker's waiting locks, if it waits itself, came with the waiters above.
            if !grantedPresent.contains(b) { result += known.filter(\.granted) }
        }
        waits = keptWaits
        blockerLocks = keptBlockers
        answeredKinds = keptKinds
        return result
    }

    public init() {}

    /// One cycle's result.
    /// - Parameters:
    ///   - backends: the backends the statement returned (the ones that matter and changed).
    ///   - keptLongTransactions: pids of remembered long transactions still open with the same
    ///     `xact_start` (the statement checks them against pg_stat_activity).
    ///   - sessions: `(pid, database, backendStart)` of sessions new since the previous capture,
    ///     or of all sessions when `allSessions`.
    ///   - holdThreshold: seconds after which a transaction counts as long.
    /// - Returns: the backends this cycle's snapshot holds: those returned plus the remembered
    ///   long transactions not returned again.
    public mutating func absorb(capturedAt: Date, backends: [BackendActivity], keptLongTransactions: Set<Int32>,
                                sessions: [(pid: Int32, database: String, backendStart: Date?)], allSessions: Bool,
                                holdThreshold: Double) -> [BackendActivity] {
        let returned = Set(backends.map(\.pid))
        var carried: [BackendActivity] = []
        var next: [Int32: BackendActivity] = [:]
        for (pid, b) in longTransactions where keptLongTransactions.contains(pid) && !returned.contains(pid) {
            carried.append(b)
            next[pid] = b
        }
        for b in backends {
            if let start = b.transactionStart, capturedAt.timeIntervalSince(start) > holdThreshold { next[b.pid] = b }
        }
        longTransactions = next
        if allSessions { sessionDatabases = [:]; sessionStarts = [:] }
        for s in sessions {
            sessionDatabases[s.pid] = s.database
            sessionStarts[s.pid] = s.backendStart
        }
        for b in backends {
            if let db = b.database { sessionDatabases[b.pid] = db }
            if let start = b.backendStart { sessionStarts[b.pid] = start }
        }
        previousCapture = capturedAt
        return backends + carried.sorted { $0.pid < $1.pid }
    }

    /// The blockers remembered for a wait that this cycle did not read again.
    public func carriedBlockers(of pid: Int32) -> [Int32]? { waits[pid]?.key.blockedBy }

    /// Forgets everything (a new connection, or a failed cycle: the next one reads it all).
    public mutating func reset() { self = SamplerMemory() }
}
