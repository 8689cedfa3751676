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

    public init(queryTextLength: Int = 1024, lockHoldThresholdSeconds: Double = 5, lockTableCheckIntervalSeconds: Double = 60,
                readOnlyWhatChanged: Bool = true, minWaitSeconds: Double = 0) {
        self.readOnlyWhatChanged = readOnlyWhatChanged
        self.minWaitSeconds = minWaitSeconds
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
    private let relationNames: RelationNameResolver
    private let clock: MonitorClock
    /// Granted locks of long transactions, read when each crossed the hold threshold (or when
    /// its fingerprint last moved), by pid; valid while that pid's `xact_start` (the JSON text,
    /// exact) is the same. Carried into cycles that don't re-read them (see ``SnapshotQuery``).
    private var longTransactionLocks: [Int32: RememberedLocks] = [:]

    struct RememberedLocks {
        var xactStart: Date
        var fingerprint: String?
        var locks: [LockRow]
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
        let forceLocks = lastLockTableReading.map { now.timeIntervalSince($0) >= options.lockTableCheckIntervalSeconds } ?? true
        // Long transactions' locks are read when first seen, and again when the lock-table
        // reading finds their fingerprint moved.
        let known = knownLongTransactionsJSON()
        if connectionFacts?.pid != conn.backendPID {
            let f = try conn.query(SnapshotQuery.connectionFactsSQL)[0]
            connectionFacts = (conn.backendPID, try f.decode("system_identifier", as: String?.self) ?? "unknown",
                               try f.decode("server_version_num", as: Int.self), try f.decode("capacity", as: Int.self),
                               try f.decode("deadlock_timeout_seconds", as: Double?.self) ?? 1)
        }
        let facts = connectionFacts!
        let rows = try conn.queryPrepared("lockvault_snapshot", SnapshotQuery.sql,
                                          [options.queryTextLength, options.lockHoldThresholdSeconds, forceLocks, known,
                                           options.readOnlyWhatChanged ? memory.previousCapture : nil,
                                           options.readOnlyWhatChanged ? Self.knownWaitsJSON(memory.knownWaits) : "[]",
                                           options.minWaitSeconds > 0 ? Self.seenWaitsJSON(memory.waitFirstSeen, resolved: memory.resolvedWaits) : "[]",
                                           memory.previousCapture == nil ? 0 : Self.longWaitThreshold(options.minWaitSeconds),
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

        // Names of relations in other databases: only this database's catalog was consulted.
        let currentDatabase = try row.decode("current_database", as: String.self)
        relationNames.resolve(&lockRows, currentDatabase: currentDatabase)
        var backends = memory.absorb(capturedAt: capturedAt, backends: returnedBackends.map(Self.backend), keptLongTransactions: Set(kept),
                                     sessions: sessions.map { ($0.pid, $0.database, $0.backendStart) }, allSessions: locksInUse != nil,
                                     holdThreshold: options.lockHoldThresholdSeconds)
        mergeLongTransactionLocks(&lockRows, backends: backends, read: longRead)
        var lockRecords = lockRows.map(Self.lock)
        let longestSeen = memory.sighted(waits.map(\.sighting), resolved: longWaiters, at: capturedAt)
        let confirmed = try findBlockers(&backends, longWaiters: longWaiters, locks: lockRecords, locksRead: locksRead,
                                         on: conn, at: capturedAt, deadlockTimeout: facts.deadlockTimeout)
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
        }

        var lockTable: LockTableUsage?
        if let locksInUse {
            lockTable = LockTableUsage(locksInUse: locksInUse, capacity: facts.capacity)
            lastLockTableReading = now
        }

        let unfolded = memory.absorbLocks(backends: backends, locks: lockRecords, locksRead: locksRead, longWaiters: longWaiters)
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
        snapshot.lockManagerPasses = (locksRead ? 1 : 0) + confirmed
        snapshot.serverConfirmedWaits = confirmed
        if locksRead { snapshot.lockReads[.pgLocks] = 1 } else if !longWaiters.isEmpty { snapshot.lockReads[.carried] = 1 }
        if confirmed > 0 { snapshot.lockReads[.blockingPids] = confirmed }
        return snapshot
    }

    /// Each long waiter's blockers: from this cycle's one pg_locks read (``LockQueue``), or, when
    /// the statement did not read it (every long wait known and unchanged), as remembered. The
    /// waits pg_locks cannot order (``AmbiguousWaits``) are asked of the server itself,
    /// `pg_blocking_pids()`, one call each, right after.
    /// - Returns: how many waits the server was asked about.
    private func findBlockers(_ backends: inout [BackendActivity], longWaiters: Set<Int32>, locks: [LockRecord], locksRead: Bool,
                              on conn: PostgresConnection, at capturedAt: Date, deadlockTimeout: Double) throws -> Int {
        guard !longWaiters.isEmpty else { return 0 }
        var found: [Int32: [Int32]] = [:]
        var asked = 0
        if locksRead {
            let leaderOf = LockGroups.leaders(backends)
            found = LockQueue.blockers(of: longWaiters, locks: locks, leaderOf: leaderOf)
            let ambiguous = AmbiguousWaits.find(waiters: longWaiters, locks: locks, leaderOf: leaderOf, now: capturedAt, deadlockTimeout: deadlockTimeout)
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
        for i in backends.indices where longWaiters.contains(backends[i].pid) {
            backends[i].blockedBy = locksRead ? found[backends[i].pid] ?? [] : memory.carriedBlockers(of: backends[i].pid) ?? []
        }
        return asked
    }

    /// What the statement compares the age of a wait with (`$8`; 0 in a first cycle, which knows no
    /// wait's age and so resolves them all, as a daemon that restarts must: its long waits are
    /// still long, and their rows must not end and start again): a little less than
    /// `minWaitSeconds`, because a wait seen one interval apart has lasted at least about an
    /// interval but the two captures may be a little less than an interval apart.
    static func longWaitThreshold(_ minWait: Double) -> Double { minWait > 0 ? minWait * 0.8 : 0 }

    /// `[[pid, backend_start, query_start, wait_event, first_seen], …]` (`$7`); a wait resolved
    /// before is `-infinity`, old enough whatever the threshold.
    static func seenWaitsJSON(_ seen: [SamplerMemory.WaitSighting: Date], resolved: Set<SamplerMemory.WaitSighting>) -> String {
        let entries: [[Any]] = seen.map { w, first in
            [Int(w.pid), w.backendStart.map(PostgresTimestamp.format) ?? NSNull(), w.queryStart.map(PostgresTimestamp.format) ?? NSNull(),
             w.waitEvent ?? NSNull(), resolved.contains(w) ? "-infinity" : PostgresTimestamp.format(first)]
        }
        guard let data = try? JSONSerialization.data(withJSONObject: entries) else { return "[]" }   // every wait counts as new
        return String(decoding: data, as: UTF8.self)
    }

    /// Adds the remembered locks of long transactions that this cycle didn't re-read, and
    /// remembers those it did. A pid whose granted locks came back anyway (it blocks someone)
    /// had all of them read: those replace what was remembered (its fingerprint stays, so a
    /// change is still caught by the next lock-table reading).
    private func mergeLongTransactionLocks(_ lockRows: inout [LockRow], backends: [BackendActivity], read: [LongReadRow]) {
        let xactStart = Dictionary(backends.compactMap { b in b.transactionStart.map { (b.pid, $0) } }, uniquingKeysWith: { a, _ in a })
        var granted: [Int32: [LockRow]] = [:]
        for l in lockRows where l.granted { if let pid = l.pid { granted[pid, default: []].append(l) } }
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
                lockRows.append(contentsOf: entry.locks)
            }
        }
        longTransactionLocks = remembered
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

    /// `[[pid, xact_start, fingerprint], …]` of the long transactions whose locks are remembered.
    static func knownJSON(_ known: [Int32: RememberedLocks]) -> String {
        let entries: [[Any]] = known.map { [Int($0.key), PostgresTimestamp.format($0.value.xactStart), $0.value.fingerprint ?? NSNull()] }
        guard let data = try? JSONSerialization.data(withJSONObject: entries) else { return "[]" }   // re-read them all
        return String(decoding: data, as: UTF8.self)
    }

    /// `[[pid, backend_start, query_start, wait_event, [[blocker, waiting], …]], …]` (see ``SnapshotQuery``).
    static func knownWaitsJSON(_ waits: [SamplerMemory.WaitKey]) -> String {
        let entries: [[Any]] = waits.map { w in
            [Int(w.pid), w.backendStart.map(PostgresTimestamp.format) ?? NSNull(), w.queryStart.map(PostgresTimestamp.format) ?? NSNull(),
             w.waitEvent ?? NSNull(), w.blockedBy.map { [Int($0), w.waitingBlockers.contains($0)] as [Any] }]
        }
        guard let data = try? JSONSerialization.data(withJSONObject: entries) else { return "[]" }   // read them all
        return String(decoding: data, as: UTF8.self)
    }

    /// Closes the extra per-database connections.
    public func close() { relationNames.closeAll() }

    static func backend(_ r: BackendRow) -> BackendActivity {
        var b = BackendActivity(
            pid: r.pid,
            backendStart: SnapshotJSON.date(r.backend_start),
            backendType: r.backend_type ?? "",
            database: r.datname,
            user: r.usename,
            applicationName: r.application_name ?? "",
            clientAddress: r.client_addr,
            state: BackendState(r.state ?? ""),
            transactionStart: SnapshotJSON.date(r.xact_start),
            queryStart: SnapshotJSON.date(r.query_start),
            stateChange: SnapshotJSON.date(r.state_change),
            waitEventType: r.wait_event_type,
            waitEvent: r.wait_event,
            query: r.query,
            leaderPid: r.leader_pid,
            isSuperuser: r.is_superuser ?? false,
            blockedBy: r.blocked_by ?? []
        )
        b.queryID = r.query_id
        return b
    }

    static func lock(_ r: LockRow) -> LockRecord {
        LockRecord(
            pid: r.pid,
            lockType: LockType(r.locktype),
            mode: LockMode(r.mode),
            granted: r.granted,
            fastpath: r.fastpath,
            waitStart: SnapshotJSON.date(r.waitstart),
            databaseOID: r.database,
            databaseName: r.database_name,
            relationOID: r.relation,
            relationName: r.relation_name,
            page: r.page,
            tuple: r.tuple,
            virtualXID: r.virtualxid,
            transactionID: r.transactionid,
            classID: r.classid,
            objID: r.objid,
            objSubID: r.objsubid,
            virtualTransaction: r.virtualtransaction
        )
    }

    static func prepared(_ r: PreparedRow) -> PreparedTransaction? {
        guard let prepared = SnapshotJSON.date(r.prepared) else { return nil }
        return PreparedTransaction(gid: r.gid, transactionID: r.transaction, owner: r.owner, database: r.database, prepared: prepared)
    }
}
