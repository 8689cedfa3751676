import Foundation
import LockvaultCore

/// The business key and hash diff of each lock row, remembered from one cycle to the next.
///
/// Why: both are pure functions of the lock, its holder and whom it waits for, and computing
/// them (the target key's text, a SHA-256) for every carried lock every second is the
/// daemon's largest cost when thousands of granted locks of idle transactions stay unchanged
/// for minutes. Only the previous cycle's entries are kept, so memory follows the lock count.
final class LockRowMemo {
    struct Identity {
        var key: LockKey
        var hashDiff: HashDiff
    }

    private struct Input: Hashable {
        var lock: LockRecord
        var holder: SessionKey
        var blockedBy: [Int32]
        var blockKind: BlockKind?
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
    private var lastBulk: VaultRowDigests<VaultRowKey>.Bulk?

    /// The generation of the lock rows built last (see ``rows(for:)``).
    var currentGeneration: UInt64? { lastRows?.rows.generation }

    /// `locks` (rows of `generation`) keyed as ``VaultChanges`` compares them; built once per generation.
    func bulk(_ locks: [LockActivityRow], generation: UInt64) -> VaultRowDigests<VaultRowKey>.Bulk {
        if let lastBulk, lastBulk.generation == generation { return lastBulk }
        let made = VaultRowDigests<VaultRowKey>.Bulk(rows: CycleRecord.lockState(locks), generation: generation)
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

    func identity(of lock: LockRecord, holder: SessionKey, blockedBy: [Int32], blockKind: BlockKind?) -> Identity {
        let input = Input(lock: lock, holder: holder, blockedBy: blockedBy, blockKind: blockKind)
        if let known = current[input] ?? previous[input] {
            current[input] = known
            return known
        }
        let made = Identity(key: LockKey(holder: holder, lock: lock), hashDiff: LockActivityRow.hashDiff(lock, blockedBy: blockedBy, blockKind: blockKind))
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
