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
    /// Strongest mode it holds, granted, on something a direct waiter waits for; nil when it
    /// holds none (a queued request: its waiters wait only for its place in the queue).
    public var heldMode: LockMode?
    /// The mode it waits for itself, when it waits.
    public var queuedForMode: LockMode?
    /// Whether it blocks by holding, by its place in a queue, or both (``BlockKind`` of each
    /// edge to it).
    public var blocksAs: BlocksAs
    /// A queued request: it waits itself and sessions are queued behind its request (DDL,
    /// `LOCK TABLE`, `VACUUM FULL`, `CREATE INDEX` waiting behind a long transaction, with every
    /// later query on the object queued behind it). Cancelling its statement frees them.
    public var isQueuedRequest: Bool
    /// Waiters its cancel would free: queued only behind it and waiting for no one else.
    public var freedByCancel: [Int32]
    /// How long it has itself waited for its lock, in seconds (nil: it does not wait).
    public var ownWaitSeconds: Double?
    /// What the waiters want from it, for people: `relation public.orders`.
    public var contendedTarget: String?
    public var relationName: String?
    public var severity: BlockerSeverity
    public var recommendedAction: String
    public var isSuperuser: Bool
    /// Blocks others while waiting for no one: where acting helps.
    public var isRoot: Bool
    /// For a blocker that is not a root: the roots it waits behind (``WaitGraph/roots(above:)``).
    public var roots: [Participant] = []
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

            let blocksAs = BlocksAs(kinds: direct.map { graph.kind(waiter: $0, blocker: blocker) })
            let hardWaiters = direct.filter { graph.kind(waiter: $0, blocker: blocker) == .hard }
            let c = contention(blocker: blocker, hardWaiters: hardWaiters, snapshot: snapshot, prepared: prepared)
            let queuedRequest = blocksAs.queues && c.queued != nil
            let idle = prepared != nil || blocker.isUnknownPrepared || (session?.state.isIdleInTransaction ?? false)
            // A queued AccessExclusiveLock request shuts everyone out of the object as surely as a
            // granted one: it escalates alike.
            let exclusive = c.held?.mode == .accessExclusive || (queuedRequest && c.queued?.mode == .accessExclusive)
            let severity = policy.classify(blockingSeconds: duration, blockedCount: all.count, idleInTransaction: idle,
                                           holdsAccessExclusive: exclusive)
            let shown = c.held ?? (queuedRequest ? c.queued : nil) ?? c.fallback
            var assessment = BlockerAssessment(
                participant: blocker, session: session, preparedTransaction: prepared,
                directlyBlocked: direct.compactMap(\.pid).sorted(), transitivelyBlocked: all.compactMap(\.pid).sorted(),
                blockingDurationSeconds: duration, blockingSince: since, heldMode: c.held?.mode, queuedForMode: c.queued?.mode,
                blocksAs: blocksAs, isQueuedRequest: queuedRequest,
                freedByCancel: queuedRequest ? graph.freedByCancelling(blocker).compactMap(\.pid).sorted() : [],
                ownWaitSeconds: graph.waitStarts[blocker].map { max(0, now.timeIntervalSince($0)) },
                contendedTarget: shown?.targetDescription, relationName: shown?.relationName,
                severity: severity, recommendedAction: "", isSuperuser: session?.isSuperuser ?? false,
                isRoot: roots.contains(blocker), inCycle: cycleMembers.contains(blocker)
            )
            if !assessment.isRoot { assessment.roots = graph.roots(above: blocker) }
            assessment.recommendedAction = RecommendedAction.text(for: assessment)
            return assessment
        }
        return assessments.sorted {
            ($0.severity, $0.blockedCount, $0.blockingDurationSeconds, $1.participant) > ($1.severity, $1.blockedCount, $1.blockingDurationSeconds, $0.participant)
        }
    }

    /// What a blocker holds that its hard waiters wait for, and what it waits for itself.
    struct Contention {
        /// Its strongest granted lock on a target a hard waiter wants.
        var held: LockRecord?
        /// Its own waiting request (the strongest, if its group waits for several).
        var queued: LockRecord?
        /// Where neither says what the waiters want from it: any lock of its on a target they
        /// want, so the dashboards can still name the object.
        var fallback: LockRecord?
    }

    static func contention(blocker: Participant, hardWaiters: Set<Participant>, snapshot: LockSnapshot, prepared: PreparedTransaction?) -> Contention {
        let waiterPids = Set(hardWaiters.compactMap(\.pid))
        let groupPids = Set(snapshot.backends.filter { waiterPids.contains($0.sessionPid) }.map(\.pid)).union(waiterPids)
        let wanted = Set(snapshot.locks.filter { !$0.granted && $0.pid.map(groupPids.contains) == true }.map(\.target))
        let blockerPids: Set<Int32>? = blocker.pid.map { pid in
            Set(snapshot.backends.filter { $0.sessionPid == pid }.map(\.pid)).union([pid])
        }
        var preparedVXIDs: Set<String> = []
        if let prepared {
            preparedVXIDs = Set(snapshot.locks.filter { $0.pid == nil && $0.transactionID == prepared.transactionID }.compactMap(\.virtualTransaction))
        }
        // The holder first (a pid test), the target after: hashing every lock's target is most
        // of the cost with thousands of carried locks and one blocker.
        let own = snapshot.locks.filter { lock in
            if let blockerPids { return lock.pid.map(blockerPids.contains) == true }
            return lock.pid == nil && (preparedVXIDs.isEmpty || lock.virtualTransaction.map(preparedVXIDs.contains) == true)
        }
        let onWanted = own.filter { wanted.contains($0.target) }
        return Contention(held: onWanted.filter(\.granted).max { $0.mode < $1.mode },
                          queued: own.filter { !$0.granted }.max { $0.mode < $1.mode },
                          fallback: onWanted.max { $0.mode < $1.mode })
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
        if a.isQueuedRequest {
            let mode = a.queuedForMode.map { " for \($0)" } ?? ""
            let held = a.blocksAs.holds ? ", and holds\(a.heldMode.map { " \($0)" } ?? " locks") others wait for" : ""
            return "queued ahead of \(a.blockedCount)\(mode)\(on), itself waiting\(held) — cancel its statement (pg_cancel_backend(\(pid))) to let them through; run migrations with SET lock_timeout so DDL gives up instead of queueing"
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
