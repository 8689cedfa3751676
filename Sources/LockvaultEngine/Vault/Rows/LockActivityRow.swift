import Foundation
import LockvaultCore

/// lock_activity_h/_s (sql/functions/record_locks.sql): one captured lock.
struct LockActivityRow: Encodable, Sendable {
    var lock_activity: LockKey
    var hash_diff: HashDiff
    var lock_type: String
    var lock_mode: String
    var lock_granted: Bool
    var database_name: String?
    var relation_name: String?
    var lock_target: String
    var advisory_key: String?
    var wait_start: Date?
    var lock_since: Date
    var blocking_pid: Int32?
    /// How this waiting lock waits for `blocking_pid`: hard (it holds the lock) or soft (it is
    /// queued ahead).
    var block_kind: String?
    var blocked_by_pids: [Int32]
    var session_pid: Int32?
    var user_name: String?
    var application_name: String?
    var client_addr: String?
    var session_state: String?
    var query: String?

    /// `blockKind`: the kind of the edge to the first of `blockedBy` (nil for a granted lock).
    init(_ lock: LockRecord, holder: SessionKey, backend: BackendActivity?, prepared: PreparedGids, capturedAt: Date, blockKind: BlockKind?,
         memo: LockRowMemo? = nil) {
        let blockedBy = lock.granted ? [] : (backend?.blockedBy ?? []).sorted()
        let blockKind = blockedBy.isEmpty ? nil : blockKind
        let since: Date? = lock.granted
            ? (backend?.transactionStart ?? prepared.preparedAt(forVirtualTransaction: lock.virtualTransaction))
            : (lock.waitStart ?? backend?.stateChange)
        let identity = memo?.identity(of: lock, holder: holder, blockedBy: blockedBy, blockKind: blockKind)
            ?? LockRowMemo.Identity(key: LockKey(holder: holder, lock: lock), hashDiff: Self.hashDiff(lock, blockedBy: blockedBy, blockKind: blockKind))
        lock_activity = identity.key
        hash_diff = identity.hashDiff
        lock_type = lock.lockType.description
        lock_mode = lock.mode.description
        lock_granted = lock.granted
        database_name = lock.databaseName
        relation_name = lock.relationName
        lock_target = lock.targetDescription
        advisory_key = lock.advisoryKey?.description
        wait_start = lock.waitStart
        lock_since = since ?? capturedAt
        blocking_pid = blockedBy.first
        block_kind = blockKind?.rawValue
        blocked_by_pids = blockedBy
        session_pid = holder.session_pid
        user_name = backend?.user ?? (lock.pid == nil ? prepared.owner(forVirtualTransaction: lock.virtualTransaction) : nil)
        application_name = backend?.applicationName
        client_addr = backend?.clientAddress
        session_state = backend?.state.description ?? (lock.pid == nil ? "prepared" : nil)
        query = backend?.query
    }

    /// Not the query text or durations: a steady lock writes nothing.
    static func hashDiff(_ lock: LockRecord, blockedBy: [Int32], blockKind: BlockKind?) -> HashDiff {
        // The kind only when soft: a hard wait hashes as it does without kinds, so a vault written by a
        // lockvault that did not record kinds gets no new row for a steady hard wait after an upgrade.
        var parts: [String?] = [
            HashDiff.flag(lock.granted), lock.waitStart.map(VaultHash.timestamp), blockedBy.map(String.init).joined(separator: ","), lock.relationName,
        ]
        if blockKind == .soft { parts.append(BlockKind.soft.rawValue) }
        return HashDiff(parts)
    }
}

/// lock_blocking_l (sql/functions/record_lock_waits.sql): a waiting lock and one blocker it waits for.
struct LockWaitRow: Encodable, Sendable {
    var lock_activity: LockKey
    var blocked_session: SessionKey
    var blocking_session: SessionKey
    /// hard or soft (``BlockKind``): a link of its own per kind, so a queued request that is
    /// granted later shows as both, each from when it was first seen so.
    var block_kind: String
}

/// Maps a prepared transaction's locks (pid NULL) to its gid via the shared virtualtransaction.
struct PreparedGids {
    let byVirtual: [String: PreparedTransaction]

    init(_ snapshot: LockSnapshot) {
        let byXid = Dictionary(snapshot.preparedTransactions.map { ($0.transactionID, $0) }, uniquingKeysWith: { a, _ in a })
        var map: [String: PreparedTransaction] = [:]
        for lock in snapshot.locks where lock.pid == nil && lock.lockType == .transactionid {
            if let v = lock.virtualTransaction, let x = lock.transactionID, let p = byXid[x] { map[v] = p }
        }
        byVirtual = map
    }

    func gid(forVirtualTransaction v: String?) -> String? { v.flatMap { byVirtual[$0]?.gid } }
    func owner(forVirtualTransaction v: String?) -> String? { v.flatMap { byVirtual[$0]?.owner } }
    func preparedAt(forVirtualTransaction v: String?) -> Date? { v.flatMap { byVirtual[$0]?.prepared } }
}
