public import Foundation

/// Everything lockvault concludes about one blocker in one cycle: what the dashboards show,
/// what alerts say, and what the resolver decides on. Whether it may be ended is not here: only
/// ``ResolvePolicy/decide(_:scope:memory:now:)`` answers that.
public struct BlockerAssessment: Sendable, Hashable, Codable {
    public var participant: Participant
    /// The blocking session (nil for a prepared transaction).
    public var session: BackendActivity?
    public var preparedTransaction: PreparedTransaction?
    /// Waiting directly for this blocker / held up by it at any depth (pids of sessions;
    /// prepared transactions never wait).
    public var directlyBlocked: [Int32]
    public var transitivelyBlocked: [Int32]
    /// Longest wait in its tree, in seconds: how long this blocker has been hurting someone.
    public var blockingDurationSeconds: Double
    /// When the longest wait in its tree began.
    public var blockingSince: Date?
    /// Strongest mode it holds (or is queued for) on something a direct waiter wants.
    public var heldMode: LockMode?
    /// What the waiters want from it, for people: `relation public.orders`.
    public var contendedTarget: String?
    public var relationName: String?
    public var severity: BlockerSeverity
    public var recommendedAction: String
    public var isSuperuser: Bool
    /// Blocks others while waiting for no one: where acting helps.
    public var isRoot: Bool
    /// Part of a wait cycle (a deadlock in progress).
    public var inCycle: Bool

    public var blockedCount: Int { transitivelyBlocked.count }
    public var pid: Int32? { participant.pid }
}

extension BlockerAssessment {
    /// Assesses every blocker in the snapshot, worst first (severity, then how many it
    /// blocks, then for how long).
    public static func assess(_ snapshot: LockSnapshot, policy: SeverityPolicy, graph: WaitGraph? = nil) -> [BlockerAssessment] {
        let graph = graph ?? WaitGraph(snapshot)
        let now = snapshot.capturedAt
        let roots = Set(graph.rootBlockers)
        let cycleMembers = Set(graph.cycles.flatMap { $0 })
        let backendsBySession = Dictionary(snapshot.backends.map { ($0.pid, $0) }, uniquingKeysWith: { a, _ in a })
        let preparedByGid = Dictionary(snapshot.preparedTransactions.map { ($0.gid, $0) }, uniquingKeysWith: { a, _ in a })

        let assessments = graph.blockers.map { blocker -> BlockerAssessment in
            let direct = graph.directlyBlocked(by: blocker)
            let all = graph.transitivelyBlocked(by: blocker)
            let duration = graph.longestWait(under: blocker, now: now)
            let since = all.compactMap { graph.waitStarts[$0] }.min()
            let session = blocker.pid.flatMap { backendsBySession[$0] }
            var prepared: PreparedTransaction?
            if case .prepared(let gid) = blocker { prepared = preparedByGid[gid] }

            let (mode, lock) = contention(blocker: blocker, directWaiters: direct, snapshot: snapshot, prepared: prepared)
            let idle = prepared != nil || blocker.isUnknownPrepared || (session?.state.isIdleInTransaction ?? false)
            let severity = policy.classify(blockingSeconds: duration, blockedCount: all.count, idleInTransaction: idle,
                                           holdsAccessExclusive: mode == .accessExclusive)
            var assessment = BlockerAssessment(
                participant: blocker, session: session, preparedTransaction: prepared,
                directlyBlocked: direct.compactMap(\.pid).sorted(), transitivelyBlocked: all.compactMap(\.pid).sorted(),
                blockingDurationSeconds: duration, blockingSince: since, heldMode: mode,
                contendedTarget: lock?.targetDescription, relationName: lock?.relationName,
                severity: severity, recommendedAction: "", isSuperuser: session?.isSuperuser ?? false,
                isRoot: roots.contains(blocker), inCycle: cycleMembers.contains(blocker)
            )
            assessment.recommendedAction = RecommendedAction.text(for: assessment)
            return assessment
        }
        return assessments.sorted {
            ($0.severity, $0.blockedCount, $0.blockingDurationSeconds, $1.participant) > ($1.severity, $1.blockedCount, $1.blockingDurationSeconds, $0.participant)
        }
    }

    /// The lock a blocker holds (or is queued for) that its direct waiters want.
    static func contention(blocker: Participant, directWaiters: Set<Participant>, snapshot: LockSnapshot, prepared: PreparedTransaction?) -> (LockMode?, LockRecord?) {
        let waiterPids = Set(directWaiters.compactMap(\.pid))
        let groupPids = Set(snapshot.backends.filter { waiterPids.contains($0.sessionPid) }.map(\.pid)).union(waiterPids)
        let wanted = Set(snapshot.locks.filter { !$0.granted && $0.pid.map(groupPids.contains) == true }.map(\.target))
        let blockerPids: Set<Int32>? = blocker.pid.map { pid in
            Set(snapshot.backends.filter { $0.sessionPid == pid }.map(\.pid)).union([pid])
        }
        var preparedVXIDs: Set<String> = []
        if let prepared {
            preparedVXIDs = Set(snapshot.locks.filter { $0.pid == nil && $0.transactionID == prepared.transactionID }.compactMap(\.virtualTransaction))
        }
        // The holder first (a pid test), the target after: hashing every lock's target was most
        // of the cost with thousands of carried locks and one blocker.
        let held = snapshot.locks.filter { lock in
            if let blockerPids {
                guard lock.pid.map(blockerPids.contains) == true else { return false }
            } else {
                guard lock.pid == nil && (preparedVXIDs.isEmpty || lock.virtualTransaction.map(preparedVXIDs.contains) == true) else { return false }
            }
            return wanted.contains(lock.target)
        }
        // Prefer what it holds over what it queues for; among those, the strongest mode.
        let best = held.max { ($0.granted ? 1 : 0, $0.mode) < ($1.granted ? 1 : 0, $1.mode) }
        return (best?.mode, best)
    }
}

extension Participant {
    var isUnknownPrepared: Bool {
        if case .prepared = self { return true }
        return false
    }
}

/// One line a DBA can act on, e.g. "idle in transaction, holding AccessExclusiveLock on
/// relation public.orders, blocking 14 — commit it or terminate pid 4711".
///
/// No durations in the text: the vault stores it as of the row's load_date and keeps it while
/// nothing else changes, and a frozen "3 s" would mislead; the dashboards show the live time.
enum RecommendedAction {
    static func text(for a: BlockerAssessment) -> String {
        let holding = a.heldMode.map { " holding \($0)" } ?? ""
        let on = a.contendedTarget.map { " on \($0)" } ?? ""
        let blocking = "blocking \(a.blockedCount)"
        if let prepared = a.preparedTransaction ?? a.participant.preparedPlaceholder {
            return "prepared transaction '\(prepared.gid)'\(holding)\(on), \(blocking) — COMMIT PREPARED '\(prepared.gid)' or ROLLBACK PREPARED '\(prepared.gid)' (lockvault never ends prepared transactions)"
        }
        guard let session = a.session else { return "\(a.participant) \(blocking)" }
        let pid = session.pid
        if a.inCycle {
            return "deadlock in progress (\(blocking)); PostgreSQL's detector ends it after deadlock_timeout — if it persists, terminate pid \(pid)"
        }
        if !a.isRoot {
            return "\(session.state), itself waiting,\(holding)\(on), \(blocking) — resolve the blocker ahead of pid \(pid) first"
        }
        switch session.state {
        case .idleInTransaction, .idleInTransactionAborted:
            return "idle in transaction\(holding.isEmpty ? "" : ",")\(holding)\(on), \(blocking) — commit it or terminate pid \(pid); consider idle_in_transaction_session_timeout"
        case .active:
            return "active\(holding.isEmpty ? "" : ",")\(holding)\(on), \(blocking) — cancel its query (pg_cancel_backend(\(pid))), terminate if it persists; consider lock_timeout for DDL"
        default:
            return "\(session.state)\(holding.isEmpty ? "" : ",")\(holding)\(on), \(blocking) — investigate pid \(pid)"
        }
    }
}

extension Participant {
    var preparedPlaceholder: PreparedTransaction? {
        if case .prepared(let gid) = self {
            return PreparedTransaction(gid: gid, transactionID: "", owner: "", database: "", prepared: .distantPast)
        }
        return nil
    }
}
