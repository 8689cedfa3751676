import Foundation
public import LockvaultCore
public import PostgresClient

/// Options that shape what a snapshot captures.
public struct SnapshotOptions: Sendable, Equatable {
    /// Longest query text kept per backend (characters).
    public var queryTextLength: Int
    /// Granted locks of transactions older than this are captured even when they block nobody.
    public var lockHoldThresholdSeconds: Double
    /// How often to read pg_locks even in a quiet cycle, to measure lock-table utilisation.
    public var lockTableCheckIntervalSeconds: Double

    /// Return only what changed since the previous cycle (``SamplerMemory``): long transactions'
    /// unchanged backend rows and unchanged waiters' locks are carried, not re-read. `false`
    /// reads every backend that matters and every waiter's locks every cycle; kept so that live
    /// tests can prove both ways see the same.
    public var readOnlyWhatChanged: Bool
    /// A lock wait younger than this is a short wait: counted (``LockSnapshot/shortWaits``), not
    /// resolved — no pg_locks read, no blockers, no vault row. 0 resolves every wait. A wait's
    /// age is known without pg_locks from the cycle that first saw it (``SamplerMemory``), so a
    /// wait is resolved from the cycle after it is `minWaitSeconds` old, at most one sampling
    /// interval late, and any wait that lasts `minWaitSeconds` plus an interval is resolved.
    public var minWaitSeconds: Double
    /// How a new long wait is learnt: nil chooses by cost each cycle (``LockReadPlan``); a way
    /// forces it (tests compare each way with the server).
    public var lockRead: LockReadPlan.Way?
    /// Of a session's granted locks on what no long waiter wants, how many are kept (the
    /// strongest): a long transaction over 2,000 partitions is 20 lock rows and a count
    /// (``LockSnapshot/heldLockCounts``), not 2,000 rows in every cycle's memory and the vault.
    public var locksKeptPerSession: Int

    public init(queryTextLength: Int = 1024, lockHoldThresholdSeconds: Double = 5, lockTableCheckIntervalSeconds: Double = 60,
                readOnlyWhatChanged: Bool = true, minWaitSeconds: Double = 0, lockRead: LockReadPlan.Way? = nil, locksKeptPerSession: Int = 20) {
        self.readOnlyWhatChanged = readOnlyWhatChanged
        self.minWaitSeconds = minWaitSeconds
        self.lockRead = lockRead
        self.locksKeptPerSession = locksKeptPerSession
        self.queryTextLength = queryTextLength
        self.lockHoldThresholdSeconds = lockHoldThresholdSeconds
        self.lockTableCheckIntervalSeconds = lockTableCheckIntervalSeconds
    }
}

/// Reads one ``LockSnapshot`` from the monitored cluster per call.
///
/// Not Sendable: it caches per-connection facts (lock-table capacity, relation names in other
/// databases) and is owned by the sampling loop.
public final class SnapshotReader {
    public var options: SnapshotOptions
    /// Facts that never change on a connection, read once per server backend pid.
    private var connectionFacts: (pid: Int32, systemIdentifier: String, serverVersionNum: Int, capacity: Int, deadlockTimeout: Double)?
    /// Backends and session databases carried between cycles (see ``SamplerMemory``).
    private var memory = SamplerMemory()
    private var lastLockTableReading: Date?
    /// Rows pg_locks had at the last pass: what the next pass is expected to cost (``LockReadPlan``).
    private var locksAtLastCount: Int?
    /// The plan of the last cycle (for logs and tests).
    public private(set) var lastPlan: LockReadPlan?
    private let relationNames: RelationNameResolver
    private let clock: MonitorClock
    /// Granted locks of long transactions, read when each crossed the hold threshold (or when
    /// its fingerprint last moved), by pid; valid while that pid's `xact_start` (the JSON text,
    /// exact) is the same. Carried into cycles that don't re-read them (see ``SnapshotQuery``).
    private var longTransactionLocks: [Int32: RememberedLocks] = [:]

    struct RememberedLocks {
        var xactStart: Date
        var fingerprint: String?
        /// Converted once, when read: carried into every cycle as they are.
        var locks: [LockRecord]
        /// How many granted locks it held when read (the fingerprint's count), of which `locks`
        /// may be only the strongest.
        var held: Int? { fingerprint.flatMap { $0.split(separator: "/").first.flatMap { Int($0) } } }
    }

    /// - Parameters:
    ///   - conninfo: the monitored cluster's conninfo; used (with another database name) to
    ///     resolve relation OIDs that belong to other databases.
    ///   - settings: session settings for those extra connections.
    ///   - clock: when the lock-table reading is due (the injected clock, so a test can move it).
    public init(options: SnapshotOptions = .init(), conninfo: String, settings: SessionSettings, clock: MonitorClock = .system) {
        self.options = options
        self.clock = clock
        self.relationNames = RelationNameResolver(conninfo: conninfo, settings: settings, clock: clock)
    }

    /// - Parameter watch: pids whose sessions to follow whatever they do (the roots of open
    ///   blocking episodes): the snapshot's ``LockSnapshot/watchedSessions`` says how each is now.
    public func read(_ conn: PostgresConnection, monitorPids: Set<Int32> = [], watch: [Int32] = []) throws -> LockSnapshot {
        let now = clock.date()
        if connectionFacts?.pid != conn.backendPID {
            let f = try conn.query(SnapshotQuery.connectionFactsSQL)[0]
            connectionFacts = (conn.backendPID, try f.decode("system_identifier", as: String?.self) ?? "unknown",
                               try f.decode("server_version_num", as: Int.self), try f.decode("capacity", as: Int.self),
                               try f.decode("deadlock_timeout_seconds", as: Double?.self) ?? 1)
        }
        let facts = connectionFacts!
        let plan = LockReadPlan.choose(LockReadPlan.Facts(
            now: now, capabilities: ServerCapabilities(serverVersionNum: facts.serverVersionNum), locksAtLastCount: locksAtLastCount,
            lastLockTableReading: lastLockTableReading, lockTableInterval: options.lockTableCheckIntervalSeconds,
            expectedNewWaits: memory.waitsResolvedNext(at: now, age: Self.longWaitThreshold(options.minWaitSeconds)),
            unreadWaits: memory.unreadWaits, forced: options.lockRead))
        lastPlan = plan
        // Long transactions' locks are read when first seen, and again when the lock-table
        // reading finds their fingerprint moved.
        let known = knownLongTransactionsJSON()
        let rows = try conn.queryPrepared("lockvault_snapshot", SnapshotQuery.sql,
                                          [options.queryTextLength, options.lockHoldThresholdSeconds, plan.lockTableReading, known,
                                           options.readOnlyWhatChanged ? memory.previousCapture : nil,
                                           options.readOnlyWhatChanged ? Self.knownWaitsJSON(memory.knownWaits) : "[]",
                                           options.minWaitSeconds > 0 ? Self.seenWaitsJSON(memory.waitFirstSeen, resolved: memory.resolvedWaits) : "[]",
                                           memory.previousCapture == nil ? 0 : Self.longWaitThreshold(options.minWaitSeconds),
                                           plan.newWaits.rawValue, options.locksKeptPerSession,
                                           "{" + watch.map(String.init).joined(separator: ",") + "}"])
        let row = rows[0]
        let capturedAt = try row.decode("captured_at", as: Date.self)

        let returnedBackends = try SnapshotJSON.decode([BackendRow].self, from: row.decode("backends", as: String?.self)) ?? []
        let kept = try SnapshotJSON.decode([Int32].self, from: row.decode("long_kept", as: String?.self)) ?? []
        let sessions = try SnapshotJSON.decode([SessionDatabaseRow].self, from: row.decode("sessions", as: String?.self)) ?? []
        let backendCount = try row.decode("backend_count", as: Int.self)
        let locksRead = try row.decode("locks_read", as: Bool.self)
        var lockRows = try SnapshotJSON.decode([LockRow].self, from: row.decode("locks", as: String?.self)) ?? []
        let longRead = try SnapshotJSON.decode([LongReadRow].self, from: row.decode("long_read", as: String?.self)) ?? []
        let preparedRows = try SnapshotJSON.decode([PreparedRow].self, from: row.decode("prepared", as: String?.self)) ?? []
        let deadlocks = try SnapshotJSON.decode([String: Int64].self, from: row.decode("deadlocks", as: String?.self)) ?? [:]
        let locksInUse = try row.decode("locks_in_use", as: Int?.self)
        let waits = try SnapshotJSON.decode([WaitRow].self, from: row.decode("waits", as: String?.self)) ?? []
        let longWaiters = Set(try SnapshotJSON.decode([Int32].self, from: row.decode("long_waits", as: String?.self)) ?? [])
        let watched = try SnapshotJSON.decode([WatchedRow].self, from: row.decode("watched", as: String?.self)) ?? []
        let answeredGroups = try SnapshotJSON.decode([AnsweredRow].self, from: row.decode("answered", as: String?.self)) ?? []
        let heldCounts = try SnapshotJSON.decode([HeldCountRow].self, from: row.decode("held_counts", as: String?.self)) ?? []
        if let total = try row.decode("locks_total", as: Int?.self) { locksAtLastCount = total }

        // Names of relations in other databases: only this database's catalog was consulted.
        let currentDatabase = try row.decode("current_database", as: String.self)
        relationNames.resolve(&lockRows, currentDatabase: currentDatabase)
        var backends = memory.absorb(capturedAt: capturedAt, backends: returnedBackends.map(Self.backend), keptLongTransactions: Set(kept),
                                     sessions: sessions.map { ($0.pid, $0.database, $0.backendStart) }, allSessions: locksInUse != nil,
                                     holdThreshold: options.lockHoldThresholdSeconds)
        var heldLockCounts = Dictionary(heldCounts.map { ($0.pid, $0.count) }, uniquingKeysWith: { a, _ in a })
        var lockRecords = lockRows.map(Self.lock)
        mergeLongTransactionLocks(&lockRecords, backends: backends, read: longRead, heldLockCounts: &heldLockCounts)
        let longestSeen = memory.sighted(waits.map(\.sighting), resolved: longWaiters, at: capturedAt)
        let answers = Self.answers(answeredGroups, longWaiters: longWaiters, backends: backends)
        let confirmed = try findBlockers(&backends, longWaiters: longWaiters, answers: answers, locks: lockRecords, locksRead: locksRead,
                                         on: conn, at: capturedAt, deadlockTimeout: facts.deadlockTimeout)
        var kinds: [Int32: [Int32: BlockKind]] = [:]
        if locksRead {
            // The statement returns the granted locks of everyone holding or queued for what a long
            // waiter wants; keep those of the ones that turned out to block (as a carried cycle
            // would), of prepared transactions and of long transactions.
            // A blocker is a lock group (named by its leader): its workers' locks are its own.
            let blockers = Set(backends.flatMap(\.blockedBy))
            let leaderOf = LockGroups.leaders(backends)
            lockRecords.removeAll { lock in
                guard lock.granted, let pid = lock.pid else { return false }
                return !blockers.contains(leaderOf[pid] ?? pid) && longTransactionLocks[pid] == nil
            }
        } else if !answers.isEmpty {
            // Answered without a pass: the waited lock's target and mode are not read yet (a pass
            // fills them in), unless a pass read this same wait before.
            kinds = AnsweredWaits.kinds(of: answers, backends: backends)
            for pid in answers.keys.sorted() {
                let backend = backends.first { $0.pid == pid }
                lockRecords += backend.flatMap(memory.readLocks(ofTheSameWait:)) ?? [LockRecord.unread(pid: pid, waitEvent: backend?.waitEvent)]
            }
        }

        var lockTable: LockTableUsage?
        if let locksInUse {
            lockTable = LockTableUsage(locksInUse: locksInUse, capacity: facts.capacity)
            lastLockTableReading = now
        }

        let unfolded = memory.absorbLocks(backends: backends, locks: lockRecords, locksRead: locksRead, longWaiters: longWaiters,
                                          answered: locksRead ? [] : Set(answers.keys), kinds: kinds)
        // From here on a parallel worker's waits and holds are its leader's, as the server reports them.
        let (grouped, locks) = LockGroups.fold(backends: backends, locks: unfolded)
        backends = grouped
        let longestResolved = locks.filter { !$0.granted }.compactMap(\.waitStart).min().map { max(0, capturedAt.timeIntervalSince($0)) } ?? 0
        var snapshot = LockSnapshot(
            capturedAt: capturedAt,
            systemIdentifier: facts.systemIdentifier,
            serverVersionNum: facts.serverVersionNum,
            backends: backends,
            backendCount: backendCount,
            sessionDatabases: memory.sessionDatabases,
            sessionStarts: memory.sessionStarts,
            locks: locks,
            preparedTransactions: preparedRows.compactMap(Self.prepared),
            lockTable: lockTable,
            deadlockCounts: deadlocks,
            monitorPids: monitorPids.union([conn.backendPID]),
            // Sessions, not processes: a parallel query whose workers wait is one waiting session.
            lockWaiters: Set(waits.map(\.group)).count,
            shortWaits: Set(waits.filter { !longWaiters.contains($0.sighting.pid) }.map(\.group))
                .subtracting(waits.filter { longWaiters.contains($0.sighting.pid) }.map(\.group)).count,
            longestWaitSeconds: max(longestSeen, longestResolved)
        )
        snapshot.watchedSessions = Dictionary(watched.map { ($0.session.pid, $0.session) }, uniquingKeysWith: { a, _ in a })
        snapshot.answeredKinds = memory.answeredKinds
        snapshot.heldLockCounts = heldLockCounts
        // pg_blocking_pids() calls: one per new long wait's lock group in the statement, one per
        // ambiguous wait after it.
        let calls = answeredGroups.count + confirmed
        snapshot.lockManagerPasses = (locksRead ? 1 : 0) + calls
        snapshot.serverConfirmedWaits = confirmed
        if locksRead { snapshot.lockReads[.pgLocks] = 1 } else if !longWaiters.isEmpty && answeredGroups.isEmpty { snapshot.lockReads[.carried] = 1 }
        if calls > 0 { snapshot.lockReads[.blockingPids] = calls }
        return snapshot
    }

    /// `pg_blocking_pids()` of each new long wait's lock group, as the statement asked it, given
    /// to every long waiter of the group (the server answers for the whole group).
    static func answers(_ rows: [AnsweredRow], longWaiters: Set<Int32>, backends: [BackendActivity]) -> [Int32: [Int32]] {
        guard !rows.isEmpty else { return [:] }
        let byGroup = Dictionary(rows.map { ($0.group, Array(Set($0.blockers)).sorted()) }, uniquingKeysWith: { a, _ in a })
        var result: [Int32: [Int32]] = [:]
        for b in backends where longWaiters.contains(b.pid) {
            if let blockers = byGroup[b.sessionPid] { result[b.pid] = blockers }
        }
        // A waiter not among the backends returned (it stopped waiting meanwhile) keeps its answer by pid.
        for r in rows where result[r.pid] == nil && longWaiters.contains(r.pid) && !backends.contains(where: { $0.pid == r.pid }) {
            result[r.pid] = byGroup[r.group]
        }
        return result
    }

    /// Each long waiter's blockers: from the server (`answers`, the blocking_pids way), from this
    /// cycle's pg_locks pass (``LockQueue``), or, when the statement read neither for it (its wait
    /// known and unchanged), as remembered. In a pass, the waits pg_locks cannot order
    /// (``AmbiguousWaits``) and the server did not answer yet are asked of the server itself,
    /// `pg_blocking_pids()`, one call each, right after.
    /// - Returns: how many waits the server was asked about after the statement.
    private func findBlockers(_ backends: inout [BackendActivity], longWaiters: Set<Int32>, answers: [Int32: [Int32]], locks: [LockRecord],
                              locksRead: Bool, on conn: PostgresConnection, at capturedAt: Date, deadlockTimeout: Double) throws -> Int {
        guard !longWaiters.isEmpty else { return 0 }
        var found: [Int32: [Int32]] = [:]
        var asked = 0
        if locksRead {
            let leaderOf = LockGroups.leaders(backends)
            found = LockQueue.blockers(of: longWaiters, locks: locks, leaderOf: leaderOf)
            let ambiguous = AmbiguousWaits.find(waiters: longWaiters.subtracting(answers.keys), locks: locks, leaderOf: leaderOf, now: capturedAt,
                                                deadlockTimeout: deadlockTimeout)
            if !ambiguous.isEmpty {
                let pids = ambiguous.keys.sorted()
                asked = pids.count
                let rows = try conn.queryPrepared("lockvault_blocking_pids", SnapshotQuery.blockingPidsSQL, ["{" + pids.map(String.init).joined(separator: ",") + "}"])
                for row in rows {
                    let pid = try row.decode("pid", as: Int32.self)
                    let blockers = try SnapshotJSON.decode([Int32].self, from: row.decode("blocked_by", as: String?.self)) ?? []
                    found[pid] = blockers.isEmpty ? nil : Array(Set(blockers)).sorted()
                }
            }
        }
        for (pid, blockers) in answers { found[pid] = blockers.isEmpty ? nil : blockers }
        for i in backends.indices where longWaiters.contains(backends[i].pid) {
            let pid = backends[i].pid
            backends[i].blockedBy = locksRead || answers[pid] != nil ? found[pid] ?? [] : memory.carriedBlockers(of: pid) ?? []
        }
        return asked
    }

    /// What the statement compares the age of a wait with (`$8`; 0 in a first cycle, which knows no
    /// wait's age and so resolves them all, as a daemon that restarts must: its long waits are
    /// still long, and their rows must not end and start again): a little less than
    /// `minWaitSeconds`, because a wait seen one interval apart has lasted at least about an
    /// interval but the two captures may be a little less than an interval apart.
    static func longWaitThreshold(_ minWait: Double) -> Double { minWait > 0 ? minWait * 0.8 : 0 }

    /// Adds the remembered locks of long transactions that this cycle didn't re-read, and
    /// remembers those it did. A pid whose granted locks came back anyway (it blocks someone)
    /// had them read again (those on what its waiters want, and its strongest others): those
    /// replace what was remembered (its fingerprint stays, so a change is still caught by the next
    /// lock-table reading). Sessions holding more than were kept get their count in `heldLockCounts`.
    private func mergeLongTransactionLocks(_ locks: inout [LockRecord], backends: [BackendActivity], read: [LongReadRow],
                                           heldLockCounts: inout [Int32: Int]) {
        let xactStart = Dictionary(backends.compactMap { b in b.transactionStart.map { (b.pid, $0) } }, uniquingKeysWith: { a, _ in a })
        var granted: [Int32: [LockRecord]] = [:]
        for l in locks where l.granted { if let pid = l.pid { granted[pid, default: []].append(l) } }
        var remembered: [Int32: RememberedLocks] = [:]
        for r in read {
            if let start = xactStart[r.pid] { remembered[r.pid] = RememberedLocks(xactStart: start, fingerprint: r.fingerprint, locks: granted[r.pid] ?? []) }
        }
        // In pid order: the same carried locks come in the same order every cycle (LockRowMemo.rows(for:)).
        for (pid, entry) in longTransactionLocks.sorted(by: { $0.key < $1.key }) where remembered[pid] == nil && xactStart[pid] == entry.xactStart {
            if let fresh = granted[pid] {
                remembered[pid] = RememberedLocks(xactStart: entry.xactStart, fingerprint: entry.fingerprint, locks: fresh)
            } else {
                remembered[pid] = entry
                locks.append(contentsOf: entry.locks)
            }
        }
        longTransactionLocks = remembered
        for (pid, entry) in remembered where heldLockCounts[pid] == nil {
            if let held = entry.held, held > entry.locks.count { heldLockCounts[pid] = held }
        }
    }

    /// ``knownJSON(_:)`` of the remembered long transactions, encoded again only when they changed
    /// (with 150 of them, encoding every second would cost a twentieth of the daemon's cycle).
    private func knownLongTransactionsJSON() -> String {
        let identity = longTransactionLocks.map { KnownLongTransaction(pid: $0.key, xactStart: $0.value.xactStart, fingerprint: $0.value.fingerprint) }
        let asSet = Set(identity)
        if let cached = knownJSONCache, cached.known == asSet { return cached.text }
        let text = Self.knownJSON(longTransactionLocks)
        knownJSONCache = (asSet, text)
        return text
    }

    private struct KnownLongTransaction: Hashable {
        var pid: Int32
        var xactStart: Date
        var fingerprint: String?
    }
    private var knownJSONCache: (known: Set<KnownLongTransaction>, text: String)?

    /// Closes the extra per-database connections.
    public func close() { relationNames.closeAll() }

}
