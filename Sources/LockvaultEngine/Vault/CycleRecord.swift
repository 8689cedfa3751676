import Foundation
import LockvaultCore
import PostgresClient

/// One cycle's findings as the document `lock_monitoring.record_cycle(jsonb)` writes, in one
/// call: a list of rows per entity family (Vault/Rows/, one type per family, each computing
/// its own hash diff), whose keys are the columns they fill.
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
    var summary: CycleSummaryRow
    /// A period before this cycle that went unobserved.
    var gap: GapRow?

    init(
        snapshot: LockSnapshot,
        assessments: [BlockerAssessment],
        graph: WaitGraph,
        deadlocks: [DeadlockEvent],
        decisions: [ResolveDecisionRecord],
        killRule: [ResolveDecision],
        killThresholdSeconds: Double,
        clusterName: String,
        recordSource: String,
        cycleMilliseconds: Double,
        heartbeatSeconds: Double,
        gap: (start: Date, end: Date, reason: String)?,
        bufferedCycles: Int = 0,
        spooledCycles: Int = 0
    ) {
        system_identifier = snapshot.systemIdentifier
        record_source = recordSource
        captured_at = snapshot.capturedAt
        heartbeat_seconds = heartbeatSeconds
        self.gap = gap.map { GapRow(start: $0.start, end: $0.end, reason: $0.reason) }
        summary = CycleSummaryRow(
            clusterName: clusterName, cycleMilliseconds: cycleMilliseconds, backends: snapshot.backendCount,
            waitingSessions: snapshot.backends.filter(\.isWaitingOnLock).count, blockers: assessments.count,
            criticalBlockers: assessments.filter { $0.severity == .critical }.count, locksCaptured: snapshot.locks.count,
            locksInUse: snapshot.lockTable?.locksInUse, lockTableCapacity: snapshot.lockTable?.capacity, serverVersionNum: snapshot.serverVersionNum,
            bufferedCycles: bufferedCycles, spooledCycles: spooledCycles)

        var named = NamedSessions(snapshot)
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
            let row = LockActivityRow(lock, holder: holder, backend: backend, prepared: prepared, capturedAt: snapshot.capturedAt)
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
                    waits.append(LockWaitRow(lock_activity: row.lock_activity, blocked_session: holder, blocking_session: blocking))
                }
            }
        }

        // The kill rule's answer per blocker (ResolvePolicy.decide): what the vault shows as auto_kill_eligible/_reason.
        let eligibility = Dictionary(killRule.map { ($0.assessment.participant, $0.eligibility) }, uniquingKeysWith: { a, _ in a })
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
                                       killThresholdSeconds: killThresholdSeconds, capturedAt: snapshot.capturedAt))
        }

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
        sessions = named.rows
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
