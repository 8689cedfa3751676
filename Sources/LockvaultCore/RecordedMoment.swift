public import Foundation

/// The blocking forest at a past moment, rebuilt from what the vault recorded
/// (`lock_monitoring.blocking_at`, one ``RecordedSession`` per session or prepared transaction
/// involved) into the very values a live cycle has, a ``LockSnapshot``, its ``WaitGraph`` and
/// assessments, so `lockvault blocking --at` draws the same tree and writes the same JSON as the
/// live `blocking`.
///
/// The edges are the recorded `pg_blocking_pids()` of each waiting lock, their kinds are decided
/// again from the recorded locks (the same rule, on the same locks), and each blocker's severity
/// and recommended action are the recorded ones: the policy then in force decided them, not
/// today's. Durations are measured to the moment asked about.
public struct RecordedMoment: Sendable {
    public var at: Date
    public var snapshot: LockSnapshot
    public var graph: WaitGraph
    public var assessments: [BlockerAssessment]

    public var forest: [BlockingTree] { graph.forest }

    public init(at: Date, systemIdentifier: String = "0", sessions: [RecordedSession]) {
        self.at = at
        snapshot = Self.snapshot(at: at, systemIdentifier: systemIdentifier, sessions: sessions)
        graph = WaitGraph(snapshot)
        var assessed = BlockerAssessment.assess(snapshot, policy: SeverityPolicy(), graph: graph)
        let recorded = Dictionary(sessions.compactMap { s in s.blocker.map { (s.participant, $0) } }, uniquingKeysWith: { a, _ in a })
        for i in assessed.indices {
            guard let r = recorded[assessed[i].participant] else { continue }
            if let severity = BlockerSeverity(rawValue: r.severity) { assessed[i].severity = severity }
            assessed[i].recommendedAction = r.recommendedAction ?? assessed[i].recommendedAction
            if let since = r.blockingStarted {
                assessed[i].blockingSince = since
                assessed[i].blockingDurationSeconds = max(0, at.timeIntervalSince(since))
            }
        }
        assessments = assessed.sorted {
            ($0.severity, $0.blockedCount, $0.blockingDurationSeconds, $1.participant) > ($1.severity, $1.blockedCount, $1.blockingDurationSeconds, $0.participant)
        }
    }

    /// The snapshot a cycle at `at` would have had, as far as the vault kept it: the sessions
    /// that waited or blocked, and their recorded locks.
    static func snapshot(at: Date, systemIdentifier: String, sessions: [RecordedSession]) -> LockSnapshot {
        var backends: [BackendActivity] = [], locks: [LockRecord] = [], prepared: [PreparedTransaction] = []
        for s in sessions {
            if let gid = s.gid {
                // A prepared transaction's locks share one (made-up) virtual transaction, which is
                // how a waiter behind "pid 0" is matched to its gid, as in a live cycle.
                let vxid = "prepared:\(gid)"
                let own = s.locks.map { $0.record(pid: nil, virtualTransaction: vxid) }
                locks += own
                let xid = own.first { $0.granted && $0.lockType == .transactionid && $0.mode == .exclusive }?.transactionID
                    ?? own.first { $0.granted && $0.lockType == .transactionid }?.transactionID ?? ""
                prepared.append(PreparedTransaction(gid: gid, transactionID: xid, owner: s.user ?? "", database: s.database ?? "",
                                                    prepared: s.locks.compactMap(\.lockSince).min() ?? at))
                continue
            }
            guard let pid = s.pid else { continue }
            let own = s.locks.map { $0.record(pid: pid, virtualTransaction: nil) }
            locks += own
            let waiting = s.locks.filter { !$0.granted }
            var blockedBy = Set(waiting.flatMap { $0.blockedByPids ?? [] })
            if blockedBy.isEmpty, let recorded = s.waitingFor { blockedBy.formUnion(recorded) }
            backends.append(BackendActivity(
                pid: pid, backendStart: s.backendStart, backendType: s.backendType ?? "client backend", database: s.database, user: s.user,
                applicationName: s.application ?? "", clientAddress: s.client, state: BackendState(s.state ?? "active"),
                transactionStart: s.xactStart, waitEventType: waiting.isEmpty && s.waitingFor == nil ? nil : "Lock",
                query: s.query, isSuperuser: s.isSuperuser ?? false, blockedBy: blockedBy.sorted()))
        }
        return LockSnapshot(capturedAt: at, systemIdentifier: systemIdentifier, backends: backends, backendCount: backends.count,
                            locks: locks, preparedTransactions: prepared, lockWaiters: backends.filter(\.isWaitingOnLock).count)
    }
}

/// One row of `lock_monitoring.blocking_at`: a session (or prepared transaction, `gid`) that
/// waited, blocked or was waited for at that moment, as the vault recorded it.
public struct RecordedSession: Sendable, Equatable {
    public var pid: Int32?
    public var gid: String?
    public var backendStart: Date?
    public var user: String?
    public var application: String?
    public var client: String?
    public var database: String?
    public var backendType: String?
    public var state: String?
    public var isSuperuser: Bool?
    public var xactStart: Date?
    public var query: String?
    /// pg_blocking_pids() of its waiting lock, as recorded.
    public var waitingFor: [Int32]?
    /// Its blocker state, if it blocked.
    public var blocker: Blocker?
    public var locks: [Lock]

    public init(pid: Int32?, gid: String? = nil, backendStart: Date? = nil, user: String? = nil, application: String? = nil, client: String? = nil,
                database: String? = nil, backendType: String? = nil, state: String? = nil, isSuperuser: Bool? = nil, xactStart: Date? = nil,
                query: String? = nil, waitingFor: [Int32]? = nil, blocker: Blocker? = nil, locks: [Lock] = []) {
        self.pid = pid
        self.gid = gid
        self.backendStart = backendStart
        self.user = user
        self.application = application
        self.client = client
        self.database = database
        self.backendType = backendType
        self.state = state
        self.isSuperuser = isSuperuser
        self.xactStart = xactStart
        self.query = query
        self.waitingFor = waitingFor
        self.blocker = blocker
        self.locks = locks
    }

    public var participant: Participant { gid.map(Participant.prepared) ?? .session(pid ?? 0) }

    /// blocking_session_s as current at that moment.
    public struct Blocker: Sendable, Equatable {
        public var severity: String
        public var blockingStarted: Date?
        public var recommendedAction: String?

        public init(severity: String, blockingStarted: Date? = nil, recommendedAction: String? = nil) {
            self.severity = severity
            self.blockingStarted = blockingStarted
            self.recommendedAction = recommendedAction
        }
    }

    /// A lock_activity_s row current at that moment, with its hub's target key.
    public struct Lock: Sendable, Equatable, Decodable {
        public var lockType: String
        public var lockMode: String
        public var granted: Bool
        public var databaseOid: UInt32?
        /// lock_activity_h.lock_target_key: `type/database/relation/page/tuple/vxid/xid/classid/objid/objsubid`.
        public var lockTargetKey: String
        public var databaseName: String?
        public var relationName: String?
        public var waitStart: Date?
        public var lockSince: Date?
        public var blockedByPids: [Int32]?

        enum CodingKeys: String, CodingKey {
            case lockType = "lock_type", lockMode = "lock_mode", granted, databaseOid = "database_oid", lockTargetKey = "lock_target_key"
            case databaseName = "database_name", relationName = "relation_name", waitStart = "wait_start", lockSince = "lock_since"
            case blockedByPids = "blocked_by_pids"
        }

        public init(lockType: String, lockMode: String, granted: Bool, databaseOid: UInt32? = nil, lockTargetKey: String, databaseName: String? = nil,
                    relationName: String? = nil, waitStart: Date? = nil, lockSince: Date? = nil, blockedByPids: [Int32]? = nil) {
            self.lockType = lockType
            self.lockMode = lockMode
            self.granted = granted
            self.databaseOid = databaseOid
            self.lockTargetKey = lockTargetKey
            self.databaseName = databaseName
            self.relationName = relationName
            self.waitStart = waitStart
            self.lockSince = lockSince
            self.blockedByPids = blockedByPids
        }

        /// The lock as a cycle read it from pg_locks: its target's identity from the key.
        func record(pid: Int32?, virtualTransaction: String?) -> LockRecord {
            var parts = lockTargetKey.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            // A virtual transaction id is itself "backend/local": one field of the key, two pieces here.
            if parts.count == 11 { parts.replaceSubrange(5...6, with: [parts[5] + "/" + parts[6]]) }
            func field(_ i: Int) -> String? { i < parts.count && !parts[i].isEmpty ? parts[i] : nil }
            return LockRecord(
                pid: pid, lockType: LockType(lockType), mode: LockMode(lockMode), granted: granted, waitStart: waitStart,
                databaseOID: databaseOid ?? field(1).flatMap { UInt32($0) }, databaseName: databaseName, relationOID: field(2).flatMap { UInt32($0) },
                relationName: relationName, page: field(3).flatMap { Int32($0) }, tuple: field(4).flatMap { Int16($0) }, virtualXID: field(5),
                transactionID: field(6), classID: field(7).flatMap { UInt32($0) }, objID: field(8).flatMap { UInt32($0) },
                objSubID: field(9).flatMap { Int16($0) }, virtualTransaction: virtualTransaction)
        }
    }
}
