import Foundation
import LockvaultCore
import PostgresClient

/// A current-state row of a cycle, as the vault keys it (``VaultChanges``' key).
enum VaultRowKey: Hashable, Sendable {
    case lock(LockKey)
    case blocker(SessionKey)
    case deadlockCounter(String)
}

/// One cycle's findings as the document `lock_monitoring.record_cycle(jsonb)` writes, in one
/// call: a list of rows per entity family (Vault/Rows/, one type per family, each computing
/// its own hash diff), whose keys are the columns they fill.
/// Who records a monitor's cycles and under which rules: the same for every cycle it records.
public struct RecordContext: Sendable, Equatable {
    /// The cluster's label (the summary's cluster_name).
    public var clusterName: String
    /// `lockvault@host[/cluster]`: the record_source of everything written.
    public var recordSource: String
    /// Who decided, for the resolve audit ("daemon@host" or "cli@host").
    public var decidedBy: String
    /// The kill rule's threshold, shown with each blocker.
    public var killThresholdSeconds: Double

    public init(clusterName: String, recordSource: String, decidedBy: String = "daemon", killThresholdSeconds: Double = 300) {
        self.clusterName = clusterName
        self.recordSource = recordSource
        self.decidedBy = decidedBy
        self.killThresholdSeconds = killThresholdSeconds
    }
}

struct CycleRecord: Encodable, Sendable {
    var system_identifier: String
    var record_source: String
    var captured_at: Date
    var heartbeat_seconds: Double
    var sessions: [SessionRow] = []
    var locks: [LockActivityRow] = []
    var waits: [LockWaitRow] = []
    var blockers: [BlockerRow] = []
    var deadlock_counters: [DeadlockCounterRow] = []
    var deadlocks: [DeadlockRow] = []
    var deadlock_participants: [DeadlockParticipantRow] = []
    var decisions: [ResolveDecisionRow] = []
    /// The alerts raised this cycle and the sinks' outcomes finished since the last one: the
    /// alert trail takes the cycles' write path (buffer, spool, replay), record_alerts.sql.
    var alerts: [AlertEventRow] = []
    var alert_deliveries: [AlertDeliveryRow] = []
    /// Blocking episodes started, joined and ended this cycle (record_episodes.sql); nil when none.
    var episodes: EpisodePart?
    var summary: CycleSummaryRow
    /// A period before this cycle that went unobserved.
    var gap: GapRow?
    /// nil: the whole cycle (the vault ends this cluster's current locks and blockers that are
    /// not in it); "changes": only what changed since the last write, see ``changes(send:end:)``.
    var mode: String?
    /// With mode "changes": the locks and blockers that ended.
    var ended_locks: [LockKey]?
    var ended_blockers: [SessionKey]?

    /// The rows of `outcome`, sampled as `snapshot`.
    init(snapshot: LockSnapshot, outcome: CycleOutcome, graph: WaitGraph, context: RecordContext, heartbeatSeconds: Double,
         bufferedCycles: Int = 0, spooledCycles: Int = 0, memo: LockRowMemo? = nil) {
        self.init(snapshot: snapshot, assessments: outcome.assessments, graph: graph, deadlocks: outcome.deadlocks,
                  decisions: outcome.decisions.map { $0.record(decidedBy: context.decidedBy, at: snapshot.capturedAt) },
                  rulings: outcome.rulings, context: context, heartbeatSeconds: heartbeatSeconds, cycleMilliseconds: outcome.cycleMilliseconds,
                  bufferedCycles: bufferedCycles, spooledCycles: spooledCycles, memo: memo, episodeEvents: outcome.episodeEvents)
        alerts = outcome.alerts.map(AlertEventRow.init)
        alert_deliveries = outcome.alertDeliveries.map(AlertDeliveryRow.init)
    }

    init(
        snapshot: LockSnapshot,
        assessments: [BlockerAssessment] = [],
        graph: WaitGraph? = nil,
        deadlocks: [DeadlockEvent] = [],
        decisions: [ResolveDecisionRecord] = [],
        rulings: [ResolveDecision] = [],
        context: RecordContext,
        heartbeatSeconds: Double = 60,
        cycleMilliseconds: Double = 0,
        gap: ObservationGap? = nil,
        bufferedCycles: Int = 0,
        spooledCycles: Int = 0,
        memo: LockRowMemo? = nil,
        episodeEvents: [EpisodeEvent] = []
    ) {
        let graph = graph ?? WaitGraph(snapshot)
        let recordSource = context.recordSource, clusterName = context.clusterName
        let killThresholdSeconds = context.killThresholdSeconds
        system_identifier = snapshot.systemIdentifier
        record_source = recordSource
        captured_at = snapshot.capturedAt
        heartbeat_seconds = heartbeatSeconds
        self.gap = gap.map { GapRow(start: $0.start, end: $0.end, reason: $0.reason) }

        var named = NamedSessions(snapshot)
        (locks, waits) = Self.lockRows(snapshot, graph: graph, named: &named, memo: memo)
        blockers = Self.blockerRows(assessments, rulings: rulings, named: &named, killThresholdSeconds: killThresholdSeconds,
                                    capturedAt: snapshot.capturedAt)

        // By severity, the blocker rows written (what blocking_session_s holds as current), not the assessments.
        summary = CycleSummaryRow(
            clusterName: clusterName, cycleMilliseconds: cycleMilliseconds, backends: snapshot.backendCount,
            waitingSessions: snapshot.lockWaiters - snapshot.shortWaits, shortWaits: snapshot.shortWaits, longestWaitSeconds: snapshot.longestWaitSeconds,
            blockers: assessments.count,
            bySeverity: blockers.reduce(into: [:]) { $0[$1.blocking_severity, default: 0] += 1 }, locksCaptured: snapshot.locks.count,
            locksInUse: snapshot.lockTable?.locksInUse, lockTableCapacity: snapshot.lockTable?.capacity, serverVersionNum: snapshot.serverVersionNum,
            bufferedCycles: bufferedCycles, spooledCycles: spooledCycles)

        deadlock_counters = snapshot.deadlockCounts.sorted { $0.key < $1.key }.map { DeadlockCounterRow(database: $0.key, deadlocks: $0.value) }
        for event in deadlocks {
            self.deadlocks.append(DeadlockRow(event))
            for p in event.participants {
                guard let key = named.session(pid: p.pid) else { continue }
                deadlock_participants.append(DeadlockParticipantRow(p, of: event, session: key))
            }
        }

        for d in decisions {
            let key: SessionKey
            if let gid = d.preparedGid {
                key = named.prepared(gid, database: d.database)
            } else if let pid = d.pid, let start = d.backendStart {
                key = named.decided(pid: pid, start: start, database: d.database)
            } else { continue }
            self.decisions.append(ResolveDecisionRow(d, session: key))
        }
        let part = EpisodePart(episodeEvents, named: &named)
        episodes = part.isEmpty ? nil : part
        sessions = named.rows
    }

    /// The lock and wait rows: the previous cycle's when the memo has them for the same
    /// locks, sessions and waits, else built (each lock's key and hash from the memo).
    private static func lockRows(_ snapshot: LockSnapshot, graph: WaitGraph, named: inout NamedSessions,
                                 memo: LockRowMemo?) -> (locks: [LockActivityRow], waits: [LockWaitRow]) {
        if let memo, let same = memo.rows(for: snapshot) {
            // The same locks, sessions and waits as the cycle before: the same rows.
            var locks = same.locks
            named = same.named
            for i in same.sinceIsCaptureTime { locks[i].lock_since = snapshot.capturedAt }
            return (locks, same.waits)
        }
        var locks: [LockActivityRow] = [], waits: [LockWaitRow] = []
        let prepared = PreparedGids(snapshot)
        for lock in snapshot.locks {
            let holder: SessionKey
            var backend: BackendActivity?
            if let pid = lock.pid {
                guard let key = named.session(pid: pid) else { continue }
                holder = key
                backend = named.backend(pid)
            } else {
                holder = named.prepared(prepared.gid(forVirtualTransaction: lock.virtualTransaction) ?? "unknown", database: lock.databaseName)
            }
            let firstBlocker = lock.granted ? nil : backend.flatMap { b in b.blockedBy.min().map { (waiter: b.sessionPid, pid: $0) } }
            let kind = firstBlocker.map { first in
                first.pid == 0 ? BlockKind.hard : graph.kind(waiter: .session(first.waiter), blocker: .session(named.backend(first.pid)?.sessionPid ?? first.pid))
            }
            let row = LockActivityRow(lock, holder: holder, backend: backend, prepared: prepared, capturedAt: snapshot.capturedAt,
                                      blockKind: kind, memo: memo)
            locks.append(row)
            // Waiting lock → each blocker it waits for.
            if !lock.granted, let waiter = backend?.sessionPid {
                for blocker in graph.blockers(of: .session(waiter)) {
                    let blocking: SessionKey
                    switch blocker {
                    case .session(let bpid):
                        guard let key = named.session(pid: bpid) else { continue }
                        blocking = key
                    case .prepared(let gid):
                        blocking = named.prepared(gid, database: lock.databaseName)
                    }
                    waits.append(LockWaitRow(lock_activity: row.lock_activity, blocked_session: holder, blocking_session: blocking,
                                             block_kind: graph.kind(waiter: .session(waiter), blocker: blocker).rawValue))
                }
            }
        }
        memo?.remember(snapshot, locks: locks, waits: waits, named: named)
        return (locks, waits)
    }

    /// A row per blocker, with the kill rule's answer for it (ResolvePolicy.decide): what the
    /// vault shows as auto_kill_eligible and auto_kill_reason.
    private static func blockerRows(_ assessments: [BlockerAssessment], rulings: [ResolveDecision], named: inout NamedSessions,
                                    killThresholdSeconds: Double, capturedAt: Date) -> [BlockerRow] {
        // The kill rule's answer per blocker (ResolvePolicy.decide): what the vault shows as auto_kill_eligible/_reason.
        var blockers: [BlockerRow] = []
        let eligibility = Dictionary(rulings.map { ($0.assessment.participant, $0.eligibility) }, uniquingKeysWith: { a, _ in a })
        for a in assessments {
            let key: SessionKey
            switch a.participant {
            case .session(let pid):
                guard let k = named.session(pid: pid) else { continue }
                key = k
            case .prepared(let gid):
                key = named.prepared(gid, database: a.preparedTransaction?.database)
            }
            blockers.append(BlockerRow(a, key: key, eligibility: eligibility[a.participant] ?? .ineligible(.resolverOff),
                                       killThresholdSeconds: killThresholdSeconds, capturedAt: capturedAt))
        }
        return blockers
    }

    /// Its current-state rows as ``VaultChanges`` compares them: every lock, blocker and
    /// deadlock counter by key with its hash diff; deadlocks, participants, decisions, the
    /// alert trail and blocking episodes are events (always sent).
    /// - Parameter lockBulk: the locks' rows already keyed (``LockRowMemo/bulk(_:generation:)``):
    ///   they are then the state's bulk, not compared row by row while their generation holds.
    func changeState(lockBulk: VaultRowDigests<VaultRowKey>.Bulk? = nil) -> VaultRowDigests<VaultRowKey> {
        var rows: [VaultRowKey: [UInt8]] = lockBulk == nil ? Self.lockState(locks) : [:]
        rows.reserveCapacity(rows.count + blockers.count + deadlock_counters.count)
        for b in blockers { rows[.blocker(b.blocking_session)] = rows[.blocker(b.blocking_session)] ?? b.hash_diff.bytes }
        for c in deadlock_counters { rows[.deadlockCounter(c.database_name)] = c.hash_diff.bytes }
        return VaultRowDigests(rows: rows, bulk: lockBulk, summary: summary.hash_diff.bytes, capturedAt: captured_at,
                               hasEvents: !deadlocks.isEmpty || !deadlock_participants.isEmpty || !decisions.isEmpty || gap != nil
                                   || !alerts.isEmpty || !alert_deliveries.isEmpty || episodes != nil)
    }

    /// Lock rows by key with their hash diff (the first of a key wins).
    static func lockState(_ locks: [LockActivityRow]) -> [VaultRowKey: [UInt8]] {
        var rows: [VaultRowKey: [UInt8]] = [:]
        rows.reserveCapacity(locks.count)
        for l in locks { rows[.lock(l.lock_activity)] = rows[.lock(l.lock_activity)] ?? l.hash_diff.bytes }
        return rows
    }

    /// The record cut down to what changed: the rows in `send`, the waits of the locks sent,
    /// the hubs of every session they name, the events, and the keys in `end`.
    func changes(send: Set<VaultRowKey>, end: Set<VaultRowKey>) -> CycleRecord {
        var r = self
        r.mode = "changes"
        r.locks = locks.filter { send.contains(.lock($0.lock_activity)) }
        let sentLocks = Set(r.locks.map(\.lock_activity))
        r.waits = waits.filter { sentLocks.contains($0.lock_activity) }
        r.blockers = blockers.filter { send.contains(.blocker($0.blocking_session)) }
        r.deadlock_counters = deadlock_counters.filter { send.contains(.deadlockCounter($0.database_name)) }
        var endedLocks: [LockKey] = [], endedBlockers: [SessionKey] = []
        for key in end {
            switch key {
            case .lock(let k): endedLocks.append(k)
            case .blocker(let k): endedBlockers.append(k)
            case .deadlockCounter: break   // counters are never end-dated by absence
            }
        }
        r.ended_locks = endedLocks
        r.ended_blockers = endedBlockers
        var named = Set<SessionKey>()
        for l in r.locks { named.insert(l.lock_activity.holder) }
        for w in r.waits { named.insert(w.blocked_session); named.insert(w.blocking_session) }
        for b in r.blockers { named.insert(b.blocking_session) }
        for p in r.deadlock_participants { named.insert(p.blocking_session) }
        for d in r.decisions { named.insert(d.blocking_session) }
        for k in r.episodes?.sessions ?? [] { named.insert(k) }
        r.sessions = sessions.filter { named.contains($0.blocking_session) }
        return r
    }

    /// The JSON text `record_cycle` reads; timestamps as PostgreSQL input text.
    func encoded() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // PostgreSQL's input text for the non-finite doubles: encoding never fails, so a record
        // can't jam the buffer.
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(PostgresTimestamp.format(date))
        }
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
