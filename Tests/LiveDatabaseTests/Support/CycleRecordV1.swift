import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient

// FROZEN: the cycle writer as it was before the vault contract changed (typed rows whose keys
// are column names, record_cycle split per family). VaultUpgradeLiveTests writes real cycles
// with it into a vault built by the migrations of that time (Tests/Fixtures/vault-v1), to
// prove such vaults migrate forward with nothing lost. Do not edit; only adapt it to renamed
// domain types. (BlockerAssessment's own autoKillEligible and killThresholdSeconds are gone
// with the one kill rule; they come in as `autoKillEligible` and `killThresholdSeconds`.)

/// Turns one cycle's findings into the JSON document `lock_monitoring.record_cycle(jsonb)`
/// writes. Hash diffs are computed here (VaultHash = the SQL rule) over the attributes whose
/// change deserves a new satellite row; live numbers (durations, query text of a running
/// session) are left out, so a steady situation writes nothing.
struct CycleRecordV1 {
    var json: [String: Any] = [:]

    init(
        snapshot: LockSnapshot,
        assessments: [BlockerAssessment],
        graph: WaitGraph,
        deadlocks: [DeadlockEvent],
        decisions: [ResolveDecisionRecord],
        autoKillEligible: (BlockerAssessment) -> Bool,
        killThresholdSeconds: Double,
        clusterName: String,
        recordSource: String,
        cycleMilliseconds: Double,
        heartbeatSeconds: Double,
        gap: (start: Date, end: Date, reason: String)?
    ) {
        let ts = { (d: Date?) -> Any in d.map(PostgresTimestamp.format) ?? NSNull() }
        let backends = Dictionary(snapshot.backends.map { ($0.pid, $0) }, uniquingKeysWith: { a, _ in a })
        let prepared = PreparedGidsV1(snapshot)
        var sessions: [String: [String: Any]] = [:]
        func session(pid: Int32) -> [String: Any]? {
            guard let b = backends[pid], let start = b.backendStart else { return nil }
            let entry: [String: Any] = ["kind": "session", "pid": pid, "backend_start": ts(start), "database_name": b.database ?? NSNull()]
            sessions["s\(pid)"] = entry
            return entry
        }
        func preparedSession(_ gid: String, database: String?) -> [String: Any] {
            let entry: [String: Any] = ["kind": "prepared", "gid": gid, "database_name": database ?? NSNull()]
            sessions["p\(gid)"] = entry
            return entry
        }

        var locks: [[String: Any]] = []
        var waits: [[String: Any]] = []
        for lock in snapshot.locks {
            var holder: [String: Any]
            var backend: BackendActivity?
            if let pid = lock.pid {
                guard let s = session(pid: pid) else { continue }
                holder = s
                backend = backends[pid]
            } else {
                let gid = prepared.gid(forVirtualTransaction: lock.virtualTransaction) ?? "unknown"
                holder = preparedSession(gid, database: lock.databaseName)
            }
            let blockedBy = lock.granted ? [] : (backend?.blockedBy ?? []).sorted()
            let since: Date? = lock.granted
                ? (backend?.transactionStart ?? prepared.preparedAt(forVirtualTransaction: lock.virtualTransaction))
                : (lock.waitStart ?? backend?.stateChange)
            var entry = holder
            entry["lock_type"] = lock.lockType.description
            entry["database_oid"] = lock.databaseOID.map { Int($0) } ?? NSNull()
            entry["target_key"] = Self.targetKey(lock)
            entry["mode"] = lock.mode.description
            entry["granted"] = lock.granted
            entry["database_name"] = lock.databaseName ?? NSNull()
            entry["relation_name"] = lock.relationName ?? NSNull()
            entry["target"] = lock.targetDescription
            entry["advisory_key"] = lock.advisoryKey?.description ?? NSNull()
            entry["wait_start"] = ts(lock.waitStart)
            entry["lock_since"] = ts(since ?? snapshot.capturedAt)
            entry["blocking_pid"] = blockedBy.first.map { Int($0) } ?? NSNull()
            entry["blocked_by"] = blockedBy.map { Int($0) }
            entry["user_name"] = backend?.user ?? (lock.pid == nil ? prepared.owner(forVirtualTransaction: lock.virtualTransaction) : nil) ?? NSNull()
            entry["application_name"] = backend?.applicationName ?? NSNull()
            entry["client_addr"] = backend?.clientAddress ?? NSNull()
            entry["state"] = backend?.state.description ?? (lock.pid == nil ? "prepared" : NSNull())
            entry["query"] = backend?.query ?? NSNull()
            entry["hash_diff"] = VaultHash.hex(VaultHash.hashKey([
                lock.granted ? "t" : "f", lock.waitStart.map(VaultHash.timestamp), blockedBy.map(String.init).joined(separator: ","),
                lock.relationName,
            ]))
            locks.append(entry)

            // Waiting lock → each blocker it waits for.
            if !lock.granted, let pid = lock.pid, let waiterSession = backends[pid]?.sessionPid {
                for blocker in graph.blockers(of: .session(waiterSession)) {
                    var w = holder
                    for key in ["lock_type", "database_oid", "target_key", "mode"] { w[key] = entry[key] }
                    switch blocker {
                    case .session(let bpid):
                        guard let b = session(pid: bpid) else { continue }
                        w["blocker_kind"] = "session"; w["blocker_pid"] = bpid; w["blocker_start"] = b["backend_start"]
                    case .prepared(let gid):
                        _ = preparedSession(gid, database: lock.databaseName)
                        w["blocker_kind"] = "prepared"; w["blocker_gid"] = gid
                    }
                    waits.append(w)
                }
            }
        }

        var blockers: [[String: Any]] = []
        for a in assessments {
            var entry: [String: Any]
            switch a.participant {
            case .session(let pid):
                guard let s = session(pid: pid) else { continue }
                entry = s
            case .prepared(let gid):
                entry = preparedSession(gid, database: a.preparedTransaction?.database)
            }
            let s = a.session
            entry["user_name"] = s?.user ?? a.preparedTransaction?.owner ?? NSNull()
            entry["application_name"] = s?.applicationName ?? NSNull()
            entry["database_name"] = s?.database ?? a.preparedTransaction?.database ?? NSNull()
            entry["client_addr"] = s?.clientAddress ?? NSNull()
            entry["backend_type"] = s?.backendType ?? "prepared transaction"
            entry["state"] = s?.state.description ?? "prepared"
            entry["is_superuser"] = a.isSuperuser
            entry["blocked_count"] = a.blockedCount
            entry["direct_count"] = a.directlyBlocked.count
            entry["blocked_pids"] = a.transitivelyBlocked.map { Int($0) }
            entry["blocking_started"] = ts(a.blockingSince ?? snapshot.capturedAt)
            entry["severity"] = a.severity.rawValue
            entry["held_mode"] = a.heldMode?.description ?? NSNull()
            entry["target"] = a.contendedTarget ?? NSNull()
            entry["relation_name"] = a.relationName ?? NSNull()
            entry["is_root"] = a.isRoot
            entry["in_cycle"] = a.inCycle
            entry["recommended_action"] = a.recommendedAction
            entry["auto_kill_eligible"] = autoKillEligible(a)
            entry["kill_threshold_seconds"] = killThresholdSeconds
            entry["xact_start"] = ts(s?.transactionStart)
            entry["query"] = s?.query ?? NSNull()
            entry["hash_diff"] = VaultHash.hex(VaultHash.hashKey([
                a.severity.rawValue, a.transitivelyBlocked.map(String.init).joined(separator: ","), String(a.directlyBlocked.count),
                s?.state.description, a.heldMode?.description, a.contendedTarget, a.isRoot ? "t" : "f", a.inCycle ? "t" : "f",
                autoKillEligible(a) ? "t" : "f", a.isSuperuser ? "t" : "f", a.blockingSince.map(VaultHash.timestamp), s?.user, s?.applicationName,
            ]))
            blockers.append(entry)
        }

        var deadlockRows: [[String: Any]] = []
        var participants: [[String: Any]] = []
        for event in deadlocks {
            let sources = event.sources.sorted().map(\.rawValue)
            let pids = event.participants.map(\.pid).sorted()
            deadlockRows.append([
                "database_name": event.database, "event_key": event.eventKey, "detected_at": ts(event.detectedAt), "sources": sources,
                "participant_pids": pids.map { Int($0) }, "victim_pid": event.victimPid.map { Int($0) } ?? NSNull(), "details": event.details ?? NSNull(),
                "hash_diff": VaultHash.hex(VaultHash.hashKey([sources.joined(separator: ","), pids.map(String.init).joined(separator: ","),
                                                              event.victimPid.map(String.init), event.details])),
            ])
            for p in event.participants {
                guard let s = session(pid: p.pid) else { continue }
                participants.append([
                    "database_name": event.database, "event_key": event.eventKey, "pid": p.pid, "backend_start": s["backend_start"]!,
                    "waits_for": p.waitsFor, "blocked_by": p.blockedBy.map { Int($0) } ?? NSNull(), "is_victim": p.pid == event.victimPid,
                    "query": p.query ?? NSNull(),
                    "hash_diff": VaultHash.hex(VaultHash.hashKey([p.waitsFor, p.blockedBy.map(String.init), p.pid == event.victimPid ? "t" : "f", p.query])),
                ])
            }
        }

        var decisionRows: [[String: Any]] = []
        for d in decisions {
            var entry: [String: Any]
            if let gid = d.preparedGid {
                entry = preparedSession(gid, database: d.database)
            } else if let pid = d.pid, let start = d.backendStart {
                entry = ["kind": "session", "pid": pid, "backend_start": ts(start), "database_name": d.database ?? NSNull()]
                sessions["s\(pid)"] = sessions["s\(pid)"] ?? entry
            } else { continue }
            entry["decided_at"] = ts(d.decidedAt)
            entry["decision"] = d.decision
            entry["reason"] = d.reason
            entry["dry_run"] = d.dryRun
            entry["action"] = d.action ?? NSNull()
            entry["outcome"] = d.outcome ?? NSNull()
            entry["severity"] = d.severity
            entry["blocked_count"] = d.blockedCount
            entry["blocking_seconds"] = d.blockingSeconds
            entry["decided_by"] = d.decidedBy
            decisionRows.append(entry)
        }

        let waiting = snapshot.backends.filter(\.isWaitingOnLock).count
        json = [
            "system_identifier": snapshot.systemIdentifier,
            "cluster_name": clusterName,
            "record_source": recordSource,
            "captured_at": PostgresTimestamp.format(snapshot.capturedAt),
            "heartbeat_seconds": heartbeatSeconds,
            "sessions": Array(sessions.values),
            "locks": locks,
            "waits": waits,
            "blockers": blockers,
            "deadlock_counters": snapshot.deadlockCounts.mapValues { String($0) },
            "deadlocks": deadlockRows,
            "deadlock_participants": participants,
            "decisions": decisionRows,
            "summary": [
                "cycle_ms": cycleMilliseconds,
                "backends": snapshot.backends.count,
                "waiting_sessions": waiting,
                "blockers": assessments.count,
                "critical_blockers": assessments.filter { $0.severity == .critical }.count,
                "locks_captured": snapshot.locks.count,
                "locks_in_use": snapshot.lockTable.map { $0.locksInUse } ?? NSNull(),
                "lock_table_capacity": snapshot.lockTable.map { $0.capacity } ?? NSNull(),
                "server_version_num": snapshot.serverVersionNum,
            ] as [String: Any],
        ]
        if let gap {
            json["gap"] = ["start": PostgresTimestamp.format(gap.start), "end": PostgresTimestamp.format(gap.end), "reason": gap.reason]
        }
    }

    func encoded() throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]), as: UTF8.self)
    }

    /// Canonical text of a lock's target fields: part of the lock hub's business key.
    static func targetKey(_ l: LockRecord) -> String {
        func s<T>(_ v: T?) -> String { v.map { "\($0)" } ?? "" }
        return [l.lockType.description, s(l.databaseOID), s(l.relationOID), s(l.page), s(l.tuple), s(l.virtualXID), s(l.transactionID),
                s(l.classID), s(l.objID), s(l.objSubID)].joined(separator: "/")
    }
}

/// Maps a prepared transaction's locks (pid NULL) to its gid via the shared virtualtransaction.
struct PreparedGidsV1 {
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
