public import Foundation

/// How a blocking episode ended (the vault's `ended_by`). The rules that choose one are
/// ``EpisodeTracker``'s (docs/operations.md, "Blocking episodes").
public enum EpisodeEndedBy: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// The root's transaction ended and its session lives (or a prepared transaction was
    /// committed or rolled back).
    case rootFinished = "root_finished"
    /// The root's session ended, not by lockvault.
    case rootDisconnected = "root_disconnected"
    /// lockvault's resolver cancelled the root's statement.
    case rootCancelled = "root_cancelled"
    /// lockvault's resolver terminated the root's session.
    case rootTerminated = "root_terminated"
    /// lockvault's resolver cancelled a queued request in the episode, and nobody waited any more.
    case queueCancelled = "queue_cancelled"
    /// Every waiter stopped waiting while the root still held: lock_timeout, statement_timeout,
    /// a cancel or a disconnect on the waiters' side.
    case waitersGaveUp = "waiters_gave_up"
    /// PostgreSQL's deadlock detector ended it (the server confirmed a deadlock among its sessions).
    case deadlock
    /// lockvault was not watching when it ended; its end is the last moment lockvault saw it.
    case unobserved

    public var description: String { rawValue }
}

/// The root of an episode as lockvault first saw it blocking: what it was, who ran it, and
/// what it was running.
public struct EpisodeRoot: Sendable, Hashable, Codable {
    public var participant: Participant
    public var pid: Int32?
    public var backendStart: Date?
    /// For a prepared transaction.
    public var gid: String?
    public var user: String?
    public var application: String?
    public var client: String?
    public var database: String?
    /// `pg_stat_activity.state` (`prepared` for a prepared transaction).
    public var state: String?
    /// The transaction it blocked in (`xact_start`; for a prepared transaction, when it was
    /// prepared): with the identity, what an episode's id is made of.
    public var transactionStart: Date?
    public var query: String?
    public var queryID: String?

    public init(participant: Participant, pid: Int32? = nil, backendStart: Date? = nil, gid: String? = nil, user: String? = nil,
                application: String? = nil, client: String? = nil, database: String? = nil, state: String? = nil,
                transactionStart: Date? = nil, query: String? = nil, queryID: String? = nil) {
        self.participant = participant
        self.pid = pid
        self.backendStart = backendStart
        self.gid = gid
        self.user = user
        self.application = application
        self.client = client
        self.database = database
        self.state = state
        self.transactionStart = transactionStart
        self.query = query
        self.queryID = queryID
    }

    /// Whether `other` is the same session (pid and backend_start) or prepared transaction.
    func isSame(as other: EpisodeRoot) -> Bool {
        participant == other.participant && Self.sameInstant(backendStart, other.backendStart)
    }

    /// Timestamps read back from the vault and from the server are the same microsecond, not
    /// always the same Double.
    static func sameInstant(_ a: Date?, _ b: Date?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        return abs(a.timeIntervalSince(b)) < 0.000_5
    }
}

/// How a waiter waited for one of its direct blockers.
public struct EpisodeEdge: Sendable, Hashable, Codable {
    /// The blocker's pid; 0 for a prepared transaction.
    public var pid: Int32
    public var kind: BlockKind

    public init(pid: Int32, kind: BlockKind) {
        self.pid = pid
        self.kind = kind
    }
}

/// One session held up in an episode, over the whole episode.
public struct EpisodeWaiter: Sendable, Hashable, Codable {
    public var pid: Int32
    public var backendStart: Date?
    public var user: String?
    public var application: String?
    /// Its statement as first seen waiting (cut to ``EpisodeTracker/waiterQueryLength``).
    public var query: String?
    /// When it began to wait behind the root (its `waitstart`, or later if it waited behind
    /// someone who was not yet behind the root).
    public var firstWaitAt: Date
    /// The last moment it was seen waiting (or the episode's end, if it waited to the end).
    public var lastWaitAt: Date
    /// Seconds waited within the episode, all its waits together.
    public var waitedSeconds: Double
    /// Its longest single wait in the episode.
    public var longestWaitSeconds: Double
    /// Its direct blockers while it waited (hard wins over soft for a blocker seen both ways).
    public var blockedBy: [EpisodeEdge]
    /// What it waited for, as first seen: `relation public.orders`.
    public var lockTarget: String?
    public var mode: String?
    /// The wait in progress: since when it counts, and the lock wait's own `waitstart` (a new
    /// one is a new wait).
    var stretchStart: Date?
    var lockWaitStart: Date?

    /// Waiting when last seen.
    public var isWaiting: Bool { stretchStart != nil }

    /// Seconds waited up to `t`, the wait in progress included.
    public func waited(upTo t: Date) -> Double {
        waitedSeconds + (stretchStart.map { max(0, t.timeIntervalSince($0)) } ?? 0)
    }
}

/// A resolver decision taken on a session of an episode.
public struct EpisodeDecisionRecord: Sendable, Hashable, Codable {
    public var at: Date
    /// The audit's word: would_terminate, terminated, cancelled, skipped, recommend_only, …
    public var action: String
    /// 0 for a prepared transaction.
    public var pid: Int32
    /// A signal was sent and the server did it.
    public var executed: Bool
    public var outcome: String?
}

/// A decision of this cycle's resolver, as the episode tracker takes it (the Engine maps its
/// executed decisions to these).
public struct EpisodeDecision: Sendable, Hashable {
    public enum Signal: String, Sendable, Hashable { case cancel, terminate, cancelQueued = "cancel_queued" }
    public var participant: Participant
    public var action: String
    /// The signal sent, when one was sent and the server acted on it (done, or a terminate that
    /// was sent but not yet confirmed).
    public var executed: Signal?
    public var outcome: String?

    public init(participant: Participant, action: String, executed: Signal?, outcome: String?) {
        self.participant = participant
        self.action = action
        self.executed = executed
        self.outcome = outcome
    }
}

/// One root blocker's incident: from the first wait behind it to the moment nobody waits
/// behind it any more (``EpisodeTracker``).
public struct Episode: Sendable, Hashable, Codable {
    /// 16 hex digits, derived from the cluster, the root's identity and transaction and the
    /// episode's start (``EpisodeTracker/id(systemIdentifier:root:startedAt:)``).
    public var id: String
    public var root: EpisodeRoot
    public var startedAt: Date
    public var endedAt: Date?
    public var endedBy: EpisodeEndedBy?
    /// The last cycle that saw someone wait behind the root.
    public var lastSeenAt: Date
    /// In the order they joined.
    public var waiters: [EpisodeWaiter] = []
    public var peakWaiting = 0
    public var peakAt: Date?
    public var maxSeverity: BlockerSeverity = .low
    /// Longest chain of waits below the root (1: everyone waits for the root directly).
    public var deepestChain = 0
    /// What the waiters waited for, sorted, at most ``EpisodeTracker/maxLockTargets``.
    public var lockTargets: [String] = []
    /// A queued request (DDL waiting, with sessions queued behind it) was part of it.
    public var queuedRequest = false
    public var decisions: [EpisodeDecisionRecord] = []
    /// Sessions waiting behind the root in the last cycle that saw it.
    public var waitingNow = 0
    /// Continued from the vault after this process started (a restart in the middle).
    public var resumed = false
    /// The root and its neighbourhood as the last cycle that saw the episode found them.
    var rootSeen = RootSeen()

    /// The session-seconds lost: every waiter's time waiting within the episode.
    public var waitSecondsTotal: Double { waiters.reduce(0) { $0 + $1.waited(upTo: endedAt ?? lastSeenAt) } }
    public var longestWaitSeconds: Double {
        let t = endedAt ?? lastSeenAt
        return waiters.map { max($0.longestWaitSeconds, $0.stretchStart.map { max(0, t.timeIntervalSince($0)) } ?? 0) }.max() ?? 0
    }
    /// To its end, or to the last cycle that saw it while it is open.
    public var durationSeconds: Double { max(0, (endedAt ?? lastSeenAt).timeIntervalSince(startedAt)) }
    public var isOpen: Bool { endedBy == nil }
}

/// The root as last seen while it had waiters: what its end is judged by.
struct RootSeen: Sendable, Hashable, Codable {
    /// Its transaction (`xact_start`) then.
    var transactionStart: Date?
    /// It was itself waiting for a lock (a wait it may have closed into a cycle).
    var waiting = false
    /// A wait cycle ran through the episode's sessions.
    var inCycle = false
}

/// What the tracker reports from one cycle.
public enum EpisodeEvent: Sendable, Hashable {
    /// A new episode (or, ``Episode/resumed``, one the vault had open before a restart); its
    /// first waiters are in it.
    case started(Episode)
    /// Someone new waits behind the root of an open episode.
    case joined(episodeID: String, startedAt: Date, waiter: EpisodeWaiter)
    /// The episode is over; everything it accumulated is in it.
    case ended(Episode)
}

/// An episode the vault holds open (no end recorded), read when a process starts so that an
/// episode in the middle of a restart keeps its identity.
public struct RecordedEpisode: Sendable, Hashable {
    public var id: String
    public var startedAt: Date
    public var root: EpisodeRoot
    /// The last moment the vault knows of it: its cluster's last recorded cycle.
    public var lastSeenAt: Date

    public init(id: String, startedAt: Date, root: EpisodeRoot, lastSeenAt: Date) {
        self.id = id
        self.startedAt = startedAt
        self.root = root
        self.lastSeenAt = lastSeenAt
    }
}

/// One cycle's facts, as the tracker takes them: the snapshot (backends, locks, prepared
/// transactions, the followed sessions, deadlock counters), its wait graph (leaders only, edges
/// with their kinds), the blockers' assessments (severities, queued requests), the resolver's
/// decisions, the deadlocks the server confirmed, and the gap this sample closes.
public struct EpisodeCycle: Sendable {
    public var snapshot: LockSnapshot
    public var graph: WaitGraph
    public var assessments: [BlockerAssessment]
    public var decisions: [EpisodeDecision]
    public var deadlocks: [DeadlockEvent]
    public var gap: ObservationGap?

    public init(snapshot: LockSnapshot, graph: WaitGraph? = nil, assessments: [BlockerAssessment] = [], decisions: [EpisodeDecision] = [],
                deadlocks: [DeadlockEvent] = [], gap: ObservationGap? = nil) {
        self.snapshot = snapshot
        self.graph = graph ?? WaitGraph(snapshot)
        self.assessments = assessments
        self.decisions = decisions
        self.deadlocks = deadlocks
        self.gap = gap
    }
}
