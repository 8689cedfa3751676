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

    public init(queryTextLength: Int = 1024, lockHoldThresholdSeconds: Double = 5, lockTableCheckIntervalSeconds: Double = 60) {
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
    private var capacity: (pid: Int32, value: Int)?
    private var lastLockTableReading: Date?
    private let relationNames: RelationNameResolver
    /// Granted locks of long transactions, read when each crossed the hold threshold (or when
    /// its fingerprint last moved), by pid; valid while that pid's `xact_start` (the JSON text,
    /// exact) is the same. Carried into cycles that don't re-read them (see ``SnapshotQuery``).
    private var longTransactionLocks: [Int32: RememberedLocks] = [:]

    struct RememberedLocks {
        var xactStart: String
        var fingerprint: String?
        var locks: [LockRow]
    }

    /// - Parameters:
    ///   - conninfo: the monitored cluster's conninfo; used (with another database name) to
    ///     resolve relation OIDs that belong to other databases.
    ///   - settings: session settings for those extra connections.
    public init(options: SnapshotOptions = .init(), conninfo: String, settings: SessionSettings) {
        self.options = options
        self.relationNames = RelationNameResolver(conninfo: conninfo, settings: settings)
    }

    public func read(_ conn: PostgresConnection, monitorPids: Set<Int32> = []) throws -> LockSnapshot {
        let now = Date()
        let forceLocks = lastLockTableReading.map { now.timeIntervalSince($0) >= options.lockTableCheckIntervalSeconds } ?? true
        // Long transactions' locks are read when first seen, and again when the lock-table
        // reading finds their fingerprint moved.
        let known = Self.knownJSON(longTransactionLocks)
        let rows = try conn.queryPrepared("lockvault_snapshot", SnapshotQuery.sql(serverVersion: conn.serverVersion),
                                          [options.queryTextLength, options.lockHoldThresholdSeconds, forceLocks, known])
        let row = rows[0]

        let backendRows = try SnapshotJSON.decode([BackendRow].self, from: row.decode("backends", as: String?.self)) ?? []
        var lockRows = try SnapshotJSON.decode([LockRow].self, from: row.decode("locks", as: String?.self)) ?? []
        let longRead = try SnapshotJSON.decode([LongReadRow].self, from: row.decode("long_read", as: String?.self)) ?? []
        let preparedRows = try SnapshotJSON.decode([PreparedRow].self, from: row.decode("prepared", as: String?.self)) ?? []
        let deadlocks = try SnapshotJSON.decode([String: Int64].self, from: row.decode("deadlocks", as: String?.self)) ?? [:]
        let locksInUse = try row.decode("locks_in_use", as: Int?.self)

        // Names of relations in other databases: only this database's catalog was consulted.
        let currentDatabase = try row.decode("current_database", as: String.self)
        relationNames.resolve(&lockRows, currentDatabase: currentDatabase)
        mergeLongTransactionLocks(&lockRows, backends: backendRows, read: longRead)

        var lockTable: LockTableUsage?
        if let locksInUse {
            if capacity?.pid != conn.backendPID {
                capacity = (conn.backendPID, try conn.query(SnapshotQuery.lockTableCapacitySQL)[0].decode("capacity", as: Int.self))
            }
            lockTable = LockTableUsage(locksInUse: locksInUse, capacity: capacity!.value)
            lastLockTableReading = now
        }

        return LockSnapshot(
            capturedAt: try row.decode("captured_at", as: Date.self),
            systemIdentifier: try row.decode("system_identifier", as: String?.self) ?? "unknown",
            serverVersionNum: try row.decode("server_version_num", as: Int.self),
            backends: backendRows.map(Self.backend),
            locks: lockRows.map(Self.lock),
            preparedTransactions: preparedRows.compactMap(Self.prepared),
            lockTable: lockTable,
            deadlockCounts: deadlocks,
            monitorPids: monitorPids.union([conn.backendPID])
        )
    }

    /// Adds the remembered locks of long transactions that this cycle didn't re-read, and
    /// remembers those it did. A pid whose granted locks came back anyway (it blocks someone)
    /// had all of them read: those replace what was remembered (its fingerprint stays, so a
    /// change is still caught by the next lock-table reading).
    private func mergeLongTransactionLocks(_ lockRows: inout [LockRow], backends: [BackendRow], read: [LongReadRow]) {
        let xactStart = Dictionary(backends.compactMap { b in b.xact_start.map { (b.pid, $0) } }, uniquingKeysWith: { a, _ in a })
        var granted: [Int32: [LockRow]] = [:]
        for l in lockRows where l.granted { if let pid = l.pid { granted[pid, default: []].append(l) } }
        var remembered: [Int32: RememberedLocks] = [:]
        for r in read {
            if let start = xactStart[r.pid] { remembered[r.pid] = RememberedLocks(xactStart: start, fingerprint: r.fingerprint, locks: granted[r.pid] ?? []) }
        }
        for (pid, entry) in longTransactionLocks where remembered[pid] == nil && xactStart[pid] == entry.xactStart {
            if let fresh = granted[pid] {
                remembered[pid] = RememberedLocks(xactStart: entry.xactStart, fingerprint: entry.fingerprint, locks: fresh)
            } else {
                remembered[pid] = entry
                lockRows.append(contentsOf: entry.locks)
            }
        }
        longTransactionLocks = remembered
    }

    /// `[[pid, xact_start, fingerprint], …]` of the long transactions whose locks are remembered.
    static func knownJSON(_ known: [Int32: RememberedLocks]) -> String {
        let entries: [[Any]] = known.map { [Int($0.key), $0.value.xactStart, $0.value.fingerprint ?? NSNull()] }
        guard let data = try? JSONSerialization.data(withJSONObject: entries) else { return "[]" }   // re-read them all
        return String(decoding: data, as: UTF8.self)
    }

    /// Closes the extra per-database connections.
    public func close() { relationNames.closeAll() }

    static func backend(_ r: BackendRow) -> BackendActivity {
        BackendActivity(
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
