public import Foundation

/// A session's identity. pids are reused by the operating system, so a pid alone can name a
/// different session a minute later; `(pid, backend_start)` cannot.
public struct SessionID: Sendable, Hashable, Codable {
    public var pid: Int32
    public var backendStart: Date

    public init(pid: Int32, backendStart: Date) {
        self.pid = pid
        self.backendStart = backendStart
    }
}

/// `pg_stat_activity.state`.
public enum BackendState: CatalogWord {
    case active, idle, idleInTransaction, idleInTransactionAborted, fastpathFunctionCall, disabled
    case unknown(String)

    static let known = byWord([.active, .idle, .idleInTransaction, .idleInTransactionAborted, .fastpathFunctionCall, .disabled])

    public init(_ text: String) { self = Self.known[text] ?? .unknown(text) }

    /// PostgreSQL's own text for the state.
    public var description: String {
        switch self {
        case .active: "active"
        case .idle: "idle"
        case .idleInTransaction: "idle in transaction"
        case .idleInTransactionAborted: "idle in transaction (aborted)"
        case .fastpathFunctionCall: "fastpath function call"
        case .disabled: "disabled"
        case .unknown(let text): text
        }
    }

    /// Holding locks while doing nothing: the worst kind of blocker, since nothing will
    /// release the locks until the client (or a timeout) acts.
    public var isIdleInTransaction: Bool { self == .idleInTransaction || self == .idleInTransactionAborted }
}

/// One row of `pg_stat_activity`, with what `pg_blocking_pids()` said about it.
public struct BackendActivity: Sendable, Hashable, Codable {
    public var pid: Int32
    public var backendStart: Date?
    public var backendType: String
    public var database: String?
    public var user: String?
    public var applicationName: String
    public var clientAddress: String?
    public var state: BackendState
    public var transactionStart: Date?
    public var queryStart: Date?
    public var stateChange: Date?
    public var waitEventType: String?
    public var waitEvent: String?
    public var query: String?
    /// `pg_stat_activity.query_id` as text: set only where the server computes one
    /// (`compute_query_id`), the same for every run of the same normalised statement.
    public var queryID: String? = nil
    /// For a parallel worker, its leader's pid.
    public var leaderPid: Int32?
    public var isSuperuser: Bool
    /// `pg_blocking_pids(pid)`, filled only for backends waiting on a lock. 0 stands for a
    /// prepared transaction (it has no backend).
    public var blockedBy: [Int32]

    public init(
        pid: Int32, backendStart: Date? = nil, backendType: String = "client backend", database: String? = nil,
        user: String? = nil, applicationName: String = "", clientAddress: String? = nil, state: BackendState = .active,
        transactionStart: Date? = nil, queryStart: Date? = nil, stateChange: Date? = nil, waitEventType: String? = nil,
        waitEvent: String? = nil, query: String? = nil, leaderPid: Int32? = nil, isSuperuser: Bool = false, blockedBy: [Int32] = []
    ) {
        self.pid = pid
        self.backendStart = backendStart
        self.backendType = backendType
        self.database = database
        self.user = user
        self.applicationName = applicationName
        self.clientAddress = clientAddress
        self.state = state
        self.transactionStart = transactionStart
        self.queryStart = queryStart
        self.stateChange = stateChange
        self.waitEventType = waitEventType
        self.waitEvent = waitEvent
        self.query = query
        self.leaderPid = leaderPid
        self.isSuperuser = isSuperuser
        self.blockedBy = blockedBy
    }

    public var isWaitingOnLock: Bool { waitEventType == "Lock" }
    public var isClientBackend: Bool { backendType == "client backend" }
    /// The session this backend works for: the leader for a parallel worker, itself otherwise.
    public var sessionPid: Int32 { leaderPid.flatMap { $0 != pid && $0 != 0 ? $0 : nil } ?? pid }
}

/// A prepared transaction (`pg_prepared_xacts`): it holds locks with no session behind it, and
/// only `COMMIT PREPARED` / `ROLLBACK PREPARED` can release them.
public struct PreparedTransaction: Sendable, Hashable, Codable {
    public var gid: String
    public var transactionID: String
    public var owner: String
    public var database: String
    public var prepared: Date

    public init(gid: String, transactionID: String, owner: String, database: String, prepared: Date) {
        self.gid = gid
        self.transactionID = transactionID
        self.owner = owner
        self.database = database
        self.prepared = prepared
    }
}

/// How full the shared lock table is. Running out raises "out of shared memory"; fast-path
/// locks don't count.
public struct LockTableUsage: Sendable, Hashable, Codable {
    public var locksInUse: Int
    /// `max_locks_per_transaction × (max_connections + max_prepared_transactions)`.
    public var capacity: Int

    public init(locksInUse: Int, capacity: Int) {
        self.locksInUse = locksInUse
        self.capacity = capacity
    }

    public var utilisation: Double { capacity > 0 ? Double(locksInUse) / Double(capacity) : 0 }
}

/// Everything one sampling cycle saw.
public struct LockSnapshot: Sendable, Hashable, Codable {
    public var capturedAt: Date
    /// `pg_control_system().system_identifier`: tells clusters apart in a shared vault.
    public var systemIdentifier: String
    public var serverVersionNum: Int
    /// The backends that matter: waiters, their blockers, long transactions (older than the hold
    /// threshold), and the parallel groups of these. Idle sessions and short transactions that
    /// block nobody are only counted (``backendCount``).
    public var backends: [BackendActivity]
    /// All backends in pg_stat_activity, including those not in ``backends``.
    public var backendCount: Int
    /// Every session's database by pid (a session's database never changes), for placing
    /// server-log deadlock reports whose sessions were never sampled as waiters.
    public var sessionDatabases: [Int32: String]
    /// Every session's `backend_start` by pid, learnt with its database: the identity of a
    /// session the cycle names but did not sample as a backend — a server-log deadlock's
    /// participants have usually rolled back and gone idle by the time the cycle runs, and their
    /// vault rows need `(pid, backend_start)`.
    public var sessionStarts: [Int32: Date]
    /// Only the locks that matter: waiting, blocking, held by prepared transactions, or held
    /// by long transactions.
    public var locks: [LockRecord]
    public var preparedTransactions: [PreparedTransaction]
    /// nil in cycles that didn't read pg_locks.
    public var lockTable: LockTableUsage?
    /// `pg_stat_database.deadlocks` by database name.
    public var deadlockCounts: [String: Int64]
    /// lockvault's own sessions: never blockers to act on.
    public var monitorPids: Set<Int32>
    /// Sessions waiting for a lock now, short waits included.
    public var lockWaiters: Int
    /// Of ``lockWaiters``, those younger than `sampling.min_wait_seconds`: counted, not resolved
    /// (they are in neither ``backends`` nor ``locks``, unless they block someone).
    public var shortWaits: Int
    /// The longest lock wait now, in seconds, short ones as long as lockvault has seen them.
    public var longestWaitSeconds: Double
    /// How often the cycle took the lock manager's partition locks: 1 when it read pg_locks, 0
    /// when it did not.
    public var lockManagerPasses: Int = 0
    /// Of the long waits, those pg_locks could not order (``AmbiguousWaits``), whose blockers
    /// the server gave (`pg_blocking_pids()`, one call each).
    public var serverConfirmedWaits: Int = 0
    /// How this cycle learnt its edges: reads by way (``LockRead``).
    public var lockReads: [LockRead: Int] = [:]
    /// The sessions the caller asked to follow (the roots of open blocking episodes), as they
    /// are now, by pid; a pid missing here has no session any more. nil when nobody asked:
    /// whether a root finished, still holds or disconnected is then not known.
    public var watchedSessions: [Int32: WatchedSession]? = nil
    /// Kinds of the edges `pg_blocking_pids()` gave without a pg_locks pass (``AnsweredWaits``),
    /// by waiting session and blocker (lock group leaders): the locks of such a wait are not read
    /// yet (``LockRecord/unread(pid:waitEvent:)``), so ``WaitGraph`` takes its kinds from here.
    public var answeredKinds: [Int32: [Int32: BlockKind]] = [:]
    /// How many granted locks a session holds, for the sessions whose granted locks ``locks``
    /// holds only some of: those on what its waiters want and its strongest others, up to
    /// `SnapshotOptions.locksKeptPerSession` (a session holding a lock on each of 2,000
    /// partitions is shown with 20 of them, and this count).
    public var heldLockCounts: [Int32: Int] = [:]

    public init(
        capturedAt: Date, systemIdentifier: String = "0", serverVersionNum: Int = 150000, backends: [BackendActivity] = [],
        backendCount: Int? = nil, sessionDatabases: [Int32: String]? = nil, sessionStarts: [Int32: Date]? = nil,
        locks: [LockRecord] = [], preparedTransactions: [PreparedTransaction] = [], lockTable: LockTableUsage? = nil,
        deadlockCounts: [String: Int64] = [:], monitorPids: Set<Int32> = [], lockWaiters: Int? = nil, shortWaits: Int = 0,
        longestWaitSeconds: Double? = nil
    ) {
        self.capturedAt = capturedAt
        self.systemIdentifier = systemIdentifier
        self.serverVersionNum = serverVersionNum
        self.backends = backends
        self.backendCount = backendCount ?? backends.count
        self.sessionDatabases = sessionDatabases ?? Dictionary(backends.compactMap { b in b.database.map { (b.pid, $0) } }, uniquingKeysWith: { a, _ in a })
        self.sessionStarts = sessionStarts ?? Dictionary(backends.compactMap { b in b.backendStart.map { (b.pid, $0) } }, uniquingKeysWith: { a, _ in a })
        self.locks = locks
        self.preparedTransactions = preparedTransactions
        self.lockTable = lockTable
        self.deadlockCounts = deadlockCounts
        self.monitorPids = monitorPids
        self.lockWaiters = lockWaiters ?? backends.filter(\.isWaitingOnLock).count
        self.shortWaits = shortWaits
        self.longestWaitSeconds = longestWaitSeconds
            ?? locks.filter { !$0.granted }.compactMap(\.waitStart).min().map { max(0, capturedAt.timeIntervalSince($0)) } ?? 0
    }

    public func backend(_ pid: Int32) -> BackendActivity? { backends.first { $0.pid == pid } }
}

/// A session followed from one cycle to the next whatever it does (``LockSnapshot/watchedSessions``):
/// enough to tell whether it still runs the transaction it blocked others in.
public struct WatchedSession: Sendable, Hashable, Codable {
    public var pid: Int32
    public var backendStart: Date?
    public var transactionStart: Date?
    public var state: BackendState
    public var stateChange: Date?

    public init(pid: Int32, backendStart: Date?, transactionStart: Date?, state: BackendState, stateChange: Date?) {
        self.pid = pid
        self.backendStart = backendStart
        self.transactionStart = transactionStart
        self.state = state
        self.stateChange = stateChange
    }
}

/// A way a cycle learns who blocks whom (the metric `lockvault_lock_reads_total{way}`).
public enum LockRead: String, Sendable, Hashable, Codable, CaseIterable {
    /// One pass over pg_locks (all 16 lock-manager partition locks once).
    case pgLocks = "pg_locks"
    /// One `pg_blocking_pids()` call: for a new long wait, when passes over pg_locks cost more
    /// than the calls (``LockReadPlan``), or for a wait pg_locks cannot order (``AmbiguousWaits``).
    case blockingPids = "blocking_pids"
    /// Every long wait known and unchanged: the waits' blockers carried, nothing read.
    case carried
}
