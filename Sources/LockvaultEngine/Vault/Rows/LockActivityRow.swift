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
    var blocked_by_pids: [Int32]
    var session_pid: Int32?
    var user_name: String?
    var application_name: String?
    var client_addr: String?
    var session_state: String?
    var query: String?

    init(_ lock: LockRecord, holder: SessionKey, backend: BackendActivity?, prepared: PreparedGids, capturedAt: Date, memo: LockRowMemo? = nil) {
        let blockedBy = lock.granted ? [] : (backend?.blockedBy ?? []).sorted()
        let since: Date? = lock.granted
            ? (backend?.transactionStart ?? prepared.preparedAt(forVirtualTransaction: lock.virtualTransaction))
            : (lock.waitStart ?? backend?.stateChange)
        let identity = memo?.identity(of: lock, holder: holder, blockedBy: blockedBy)
            ?? LockRowMemo.Identity(key: LockKey(holder: holder, lock: lock), hashDiff: Self.hashDiff(lock, blockedBy: blockedBy))
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
        blocked_by_pids = blockedBy
        session_pid = holder.session_pid
        user_name = backend?.user ?? (lock.pid == nil ? prepared.owner(forVirtualTransaction: lock.virtualTransaction) : nil)
        application_name = backend?.applicationName
        client_addr = backend?.clientAddress
        session_state = backend?.state.description ?? (lock.pid == nil ? "prepared" : nil)
        query = backend?.query
    }

    /// Not the query text or durations: a steady lock writes nothing.
    static func hashDiff(_ lock: LockRecord, blockedBy: [Int32]) -> HashDiff {
        HashDiff([
            HashDiff.flag(lock.granted), lock.waitStart.map(VaultHash.timestamp), blockedBy.map(String.init).joined(separator: ","), lock.relationName,
        ])
    }
}

/// The business key and hash diff of each lock row, remembered from one cycle to the next.
///
/// Why: both are pure functions of the lock, its holder and whom it waits for, and computing
/// them (the target key's text, a SHA-256) for every carried lock every second was the
/// daemon's largest cost in issue 16's worst case (3,000 granted locks of 150 idle
/// transactions, unchanged for minutes). Only the previous cycle's entries are kept, so
/// memory follows the lock count.
final class LockRowMemo {
    struct Identity {
        var key: LockKey
        var hashDiff: HashDiff
    }

    private struct Input: Hashable {
        var lock: LockRecord
        var holder: SessionKey
        var blockedBy: [Int32]
    }

    private var previous: [Input: Identity] = [:]
    private var current: [Input: Identity] = [:]

    /// The previous cycle's lock rows with what they were built from. Comparing the inputs is
    /// much cheaper than building the rows (strings and SHA-256 per lock), and in a steady cycle
    /// the sampler carries them unchanged.
    struct Rows {
        var locks: [LockActivityRow]
        var waits: [LockWaitRow]
        var named: NamedSessions
        /// Rows whose lock_since fell back to the capture time (nothing better was known).
        var sinceIsCaptureTime: [Int]
        /// Rows built from the same inputs have the same generation.
        var generation: UInt64
    }
    private struct RowsInput: Equatable {
        var locks: [LockRecord]
        var backends: [BackendActivity]
        var prepared: [PreparedTransaction]
        var sessionStarts: [Int32: Date]
        var sessionDatabases: [Int32: String]

        init(_ s: LockSnapshot) {
            locks = s.locks
            backends = s.backends
            prepared = s.preparedTransactions
            sessionStarts = s.sessionStarts
            sessionDatabases = s.sessionDatabases
        }
    }
    private var lastRows: (input: RowsInput, rows: Rows)?
    private var generation: UInt64 = 0
    /// The vault's view of the latest generation's lock rows (``VaultChanges``' bulk).
    private var lastBulk: VaultCycleState<VaultRowKey>.Bulk?

    /// The generation of the lock rows built last (see ``rows(for:)``).
    var currentGeneration: UInt64? { lastRows?.rows.generation }

    /// `locks` (rows of `generation`) keyed as ``VaultChanges`` compares them; built once per generation.
    func bulk(_ locks: [LockActivityRow], generation: UInt64) -> VaultCycleState<VaultRowKey>.Bulk {
        if let lastBulk, lastBulk.generation == generation { return lastBulk }
        let made = VaultCycleState<VaultRowKey>.Bulk(rows: CycleRecord.lockState(locks), generation: generation)
        if generation == currentGeneration { lastBulk = made }
        return made
    }

    /// The previous cycle's rows when `snapshot` holds the same locks, backends (and so the same
    /// waits), sessions and prepared transactions.
    func rows(for snapshot: LockSnapshot) -> Rows? {
        guard let lastRows, lastRows.input == RowsInput(snapshot) else { return nil }
        return lastRows.rows
    }

    func remember(_ snapshot: LockSnapshot, locks: [LockActivityRow], waits: [LockWaitRow], named: NamedSessions) {
        let fallback = locks.indices.filter { locks[$0].lock_since == snapshot.capturedAt }
        generation &+= 1
        lastRows = (RowsInput(snapshot), Rows(locks: locks, waits: waits, named: named, sinceIsCaptureTime: fallback, generation: generation))
        lastBulk = nil
    }

    init() {}

    func identity(of lock: LockRecord, holder: SessionKey, blockedBy: [Int32]) -> Identity {
        let input = Input(lock: lock, holder: holder, blockedBy: blockedBy)
        if let known = current[input] ?? previous[input] {
            current[input] = known
            return known
        }
        let made = Identity(key: LockKey(holder: holder, lock: lock), hashDiff: LockActivityRow.hashDiff(lock, blockedBy: blockedBy))
        current[input] = made
        return made
    }

    /// The cycle's rows are built: what it did not ask for is forgotten (unless it asked for
    /// nothing: its rows were the previous cycle's, see ``rows(for:)``).
    func cycleEnded() {
        guard !current.isEmpty else { return }
        previous = current
        current = [:]
        current.reserveCapacity(previous.count)
    }
}

/// lock_blocking_l (sql/functions/record_lock_waits.sql): a waiting lock and one blocker it waits for.
struct LockWaitRow: Encodable, Sendable {
    var lock_activity: LockKey
    var blocked_session: SessionKey
    var blocking_session: SessionKey
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
