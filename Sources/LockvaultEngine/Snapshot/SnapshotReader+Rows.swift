import Foundation
import LockvaultCore
import PostgresClient

/// The statement's JSON parameters and the mapping of its rows to LockvaultCore values.
extension SnapshotReader {
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
