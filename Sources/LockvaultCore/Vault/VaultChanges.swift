public import Foundation

/// What one cycle found, as the vault keys it: every current-state row (a lock, a blocker, a
/// deadlock counter…) by its key with its hash diff, the summary's hash diff, and whether the
/// cycle carries events (deadlocks, resolve decisions, a gap), which are always written.
public struct VaultRowDigests<Key: Hashable & Sendable>: Sendable, Equatable {
    public var rows: [Key: [UInt8]]
    /// Rows that usually come unchanged from one cycle to the next (a cluster's carried locks),
    /// kept apart so that comparing them costs nothing while they are the same; `rows` and
    /// `bulk.rows` never share a key.
    public var bulk: Bulk?
    public var summary: [UInt8]
    /// When the cycle sampled the cluster: the summary's heartbeat is measured in these.
    public var capturedAt: Date
    public var hasEvents: Bool

    /// Rows with a generation: two bulks of the same generation hold the same rows (whoever
    /// builds the states promises it), so they are not compared row by row.
    public struct Bulk: Sendable, Equatable {
        public var rows: [Key: [UInt8]]
        public var generation: UInt64

        public init(rows: [Key: [UInt8]], generation: UInt64) {
            self.rows = rows
            self.generation = generation
        }
    }

    public init(rows: [Key: [UInt8]], bulk: Bulk? = nil, summary: [UInt8], capturedAt: Date, hasEvents: Bool) {
        self.rows = rows
        self.bulk = bulk
        self.summary = summary
        self.capturedAt = capturedAt
        self.hasEvents = hasEvents
    }

    /// Every row, the bulk's included.
    public var allRows: [Key: [UInt8]] {
        guard let bulk else { return rows }
        return rows.merging(bulk.rows) { a, _ in a }
    }
}

/// Decides what of a cycle the daemon sends to the vault: only what changed since its last
/// successful write, so a steady cycle costs the vault nothing but the summary's heartbeat.
///
/// It remembers the vault's current rows as of the last write that is known to have committed
/// (``written(_:summaryAt:)``) and compares each cycle with that, not with the previous cycle:
/// records buffered, dropped or refused in between don't matter, because the comparison is
/// always against what the vault holds. Whenever that is not known for certain — at start, after
/// a restart (spooled records are written whole), after a failed or refused write (a commit may
/// have happened without its answer) — ``forget()`` makes the next write a whole one
/// (``Plan/all``), which the vault reconciles as it always did: rows not in it are end-dated.
///
/// No clock: the heartbeat is measured between the cycles' own capture times.
public struct VaultChanges<Key: Hashable & Sendable>: Sendable {
    public enum Plan: Sendable, Equatable {
        /// Nothing changed and no heartbeat is due: no call to the vault at all.
        case skip
        /// Send every row; the vault end-dates this cluster's current rows that are not in it.
        case all
        /// Send the rows in `send` (new or changed) and end-date exactly the rows in `end`.
        case changes(send: Set<Key>, end: Set<Key>)
    }

    /// The vault's current rows after the last successful write (the bulk apart); nil when not known.
    public private(set) var known: [Key: [UInt8]]?
    /// The bulk of the last successful write.
    private var knownBulk: VaultRowDigests<Key>.Bulk?
    /// The hash diff of the vault's current summary row and its last_cycle_at.
    public private(set) var summary: (digest: [UInt8], at: Date)?
    /// The vault writes a summary row at least this often (record_cycle_summary's rule).
    public var heartbeatSeconds: Double

    public init(heartbeatSeconds: Double) {
        self.heartbeatSeconds = heartbeatSeconds
    }

    /// What to send for `cycle`.
    public func plan(_ cycle: VaultRowDigests<Key>) -> Plan {
        guard let known else { return .all }
        var send = Set<Key>()
        let end: Set<Key>
        if let bulk = cycle.bulk, bulk.generation == knownBulk?.generation {
            // The bulk is what the vault holds already: only the other rows are compared.
            for (key, digest) in cycle.rows where known[key] != digest { send.insert(key) }
            end = Set(known.keys.filter { cycle.rows[$0] == nil })
        } else {
            let was = knownBulk.map { known.merging($0.rows) { a, _ in a } } ?? known
            let now = cycle.allRows
            for (key, digest) in now where was[key] != digest { send.insert(key) }
            end = Set(was.keys.filter { now[$0] == nil })
        }
        if send.isEmpty, end.isEmpty, !cycle.hasEvents, !summaryDue(cycle) { return .skip }
        return .changes(send: send, end: end)
    }

    /// Whether the vault would write a summary row for `cycle`: it differs from the current
    /// one, or the current one is a heartbeat old (or unknown).
    public func summaryDue(_ cycle: VaultRowDigests<Key>) -> Bool {
        guard let summary else { return true }
        return summary.digest != cycle.summary || cycle.capturedAt.timeIntervalSince(summary.at) >= heartbeatSeconds
            || cycle.capturedAt < summary.at
    }

    /// The vault committed the write planned for `cycle` (any plan but ``Plan/skip``): its
    /// current rows are now the cycle's. `summaryAt` is the last_cycle_at of the vault's current
    /// summary row, as record_cycle returned it (nil: not returned, so unknown).
    public mutating func written(_ cycle: VaultRowDigests<Key>, summaryAt: Date?) {
        known = cycle.rows
        knownBulk = cycle.bulk
        summary = summaryAt.map { (cycle.summary, $0) }
    }

    /// `cycle` was planned ``Plan/skip``: the vault holds exactly its rows already. Its bulk, if
    /// of another generation than the last write's, is taken as known, so the next cycles with that
    /// generation are not compared row by row again (a rebuilt but identical bulk would otherwise be
    /// compared in full every cycle until something changed).
    public mutating func unchanged(_ cycle: VaultRowDigests<Key>) {
        guard known != nil, cycle.bulk?.generation != knownBulk?.generation else { return }
        known = cycle.rows
        knownBulk = cycle.bulk
    }

    /// What the vault holds is no longer known for certain: the next write is a whole one.
    public mutating func forget() {
        known = nil
        knownBulk = nil
        summary = nil
    }
}
