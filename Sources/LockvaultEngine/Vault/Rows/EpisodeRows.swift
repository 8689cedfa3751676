import Foundation
import LockvaultCore

/// The `episodes` part of a cycle document (sql/functions/record_episodes.sql): what the
/// episode tracker reported this cycle — episodes started, sessions that joined one, episodes
/// ended. Events: a cycle carrying any is always written.
struct EpisodePart: Encodable, Sendable {
    var started: [EpisodeRow] = []
    var joined: [EpisodeJoinRow] = []
    var ended: [EpisodeRow] = []

    var isEmpty: Bool { started.isEmpty && joined.isEmpty && ended.isEmpty }

    /// The rows of `events`, naming their sessions in `named` (their hubs go with the cycle).
    init(_ events: [EpisodeEvent], named: inout NamedSessions) {
        for event in events {
            switch event {
            case .started(let e): started.append(EpisodeRow(e, ended: false, named: &named))
            case .ended(let e): ended.append(EpisodeRow(e, ended: true, named: &named))
            case .joined(let id, let startedAt, let w):
                guard let key = EpisodeRow.session(w.pid, w.backendStart, database: nil, named: &named) else { continue }
                joined.append(EpisodeJoinRow(episode_id: id, started_at: startedAt, blocking_session: key, first_wait_at: w.firstWaitAt))
            }
        }
    }

    /// Every session the part names (for a document cut down to what changed).
    var sessions: [SessionKey] {
        (started + ended).flatMap { [$0.root_session].compactMap { $0 } + $0.waiter_sessions.map(\.blocking_session) } + joined.map(\.blocking_session)
    }
}

/// A session joining an open episode: a link row.
struct EpisodeJoinRow: Encodable, Sendable {
    var episode_id: String
    var started_at: Date
    var blocking_session: SessionKey
    var first_wait_at: Date
}

struct EpisodeWaiterSession: Encodable, Sendable {
    var blocking_session: SessionKey
    var first_wait_at: Date
}

/// blocking_episode_s (and its hub and links): an episode as it started, or as it ended. Its
/// keys are the table's columns; root_session and waiter_sessions are the links' session keys;
/// waiters and decisions (ended only) are stored as episode_story shows them.
struct EpisodeRow: Encodable, Sendable {
    var episode_id: String
    var started_at: Date
    var ended_at: Date?
    var ended_by: String?
    var root_session: SessionKey?
    var waiter_sessions: [EpisodeWaiterSession]
    var root_pid: Int32?
    var root_backend_start: Date?
    var root_gid: String?
    var root_user_name: String?
    var root_application_name: String?
    var root_client_addr: String?
    var root_database_name: String?
    var root_state: String?
    var root_xact_start: Date?
    var root_query: String?
    var root_query_id: String?
    var waiting_sessions: Int
    var peak_waiting: Int
    var peak_at: Date?
    var wait_seconds_total: Double
    var longest_wait_seconds: Double
    var max_severity: String
    var deepest_chain: Int
    var lock_targets: [String]
    var queued_request: Bool
    var waiters: [StoryWaiter]?
    var decisions: [StoryDecision]?

    init(_ e: Episode, ended: Bool, named: inout NamedSessions) {
        episode_id = e.id
        started_at = e.startedAt
        ended_at = ended ? e.endedAt : nil
        ended_by = ended ? e.endedBy?.rawValue : nil
        let r = e.root
        switch r.participant {
        case .prepared(let gid): root_session = named.prepared(gid, database: r.database)
        case .session(let pid): root_session = Self.session(pid, r.backendStart, database: r.database, named: &named)
        }
        waiter_sessions = e.waiters.compactMap { w in
            Self.session(w.pid, w.backendStart, database: nil, named: &named).map { EpisodeWaiterSession(blocking_session: $0, first_wait_at: w.firstWaitAt) }
        }
        root_pid = r.pid
        root_backend_start = r.backendStart
        root_gid = r.gid
        root_user_name = r.user
        root_application_name = r.application
        root_client_addr = r.client
        root_database_name = r.database
        root_state = r.state
        root_xact_start = r.transactionStart
        root_query = r.query
        root_query_id = r.queryID
        waiting_sessions = ended ? e.waiters.count : e.waitingNow
        peak_waiting = e.peakWaiting
        peak_at = e.peakAt
        wait_seconds_total = Self.rounded(e.waitSecondsTotal)
        longest_wait_seconds = Self.rounded(e.longestWaitSeconds)
        max_severity = e.maxSeverity.rawValue
        deepest_chain = e.deepestChain
        lock_targets = e.lockTargets
        queued_request = e.queuedRequest
        if ended {
            waiters = e.waiters.map(StoryWaiter.init)
            decisions = e.decisions.isEmpty ? nil : e.decisions.map(StoryDecision.init)
        }
    }

    /// A session's hub key; nil without a backend_start (never the case for a sampled session).
    static func session(_ pid: Int32, _ start: Date?, database: String?, named: inout NamedSessions) -> SessionKey? {
        guard let start else { return nil }
        return named.decided(pid: pid, start: start, database: database)
    }

    /// Milliseconds are all a duration here is worth: shorter JSON, the same rows on a replay.
    static func rounded(_ seconds: Double) -> Double { (seconds * 1000).rounded() / 1000 }
}

/// A waiter as episode_story shows it (camelCase: the story's own keys).
struct StoryWaiter: Encodable, Sendable {
    var pid: Int32
    var backendStart: Date?
    var user: String?
    var application: String?
    var firstWaitAt: Date
    var lastWaitAt: Date
    var waitedSeconds: Double
    var longestWaitSeconds: Double
    var blockedBy: [EpisodeEdge]
    var lockTarget: String?
    var mode: String?
    var query: String?

    init(_ w: EpisodeWaiter) {
        pid = w.pid
        backendStart = w.backendStart
        user = w.user
        application = w.application
        firstWaitAt = w.firstWaitAt
        lastWaitAt = w.lastWaitAt
        waitedSeconds = EpisodeRow.rounded(w.waitedSeconds)
        longestWaitSeconds = EpisodeRow.rounded(w.longestWaitSeconds)
        blockedBy = w.blockedBy
        lockTarget = w.lockTarget
        mode = w.mode
        query = w.query
    }

    // Absent values as null, as the story promises (synthesised encoding would leave them out).
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(pid, forKey: .pid)
        try c.encode(backendStart, forKey: .backendStart)
        try c.encode(user, forKey: .user)
        try c.encode(application, forKey: .application)
        try c.encode(firstWaitAt, forKey: .firstWaitAt)
        try c.encode(lastWaitAt, forKey: .lastWaitAt)
        try c.encode(waitedSeconds, forKey: .waitedSeconds)
        try c.encode(longestWaitSeconds, forKey: .longestWaitSeconds)
        try c.encode(blockedBy, forKey: .blockedBy)
        try c.encode(lockTarget, forKey: .lockTarget)
        try c.encode(mode, forKey: .mode)
        try c.encode(query, forKey: .query)
    }

    enum CodingKeys: String, CodingKey {
        case pid, backendStart, user, application, firstWaitAt, lastWaitAt, waitedSeconds, longestWaitSeconds, blockedBy, lockTarget, mode, query
    }
}

/// A resolver decision as episode_story shows it.
struct StoryDecision: Encodable, Sendable {
    var at: Date
    var action: String
    var pid: Int32
    var executed: Bool
    var outcome: String?

    init(_ d: EpisodeDecisionRecord) {
        at = d.at
        action = d.action
        pid = d.pid
        executed = d.executed
        outcome = d.outcome
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(at, forKey: .at)
        try c.encode(action, forKey: .action)
        try c.encode(pid, forKey: .pid)
        try c.encode(executed, forKey: .executed)
        try c.encode(outcome, forKey: .outcome)
    }

    enum CodingKeys: String, CodingKey { case at, action, pid, executed, outcome }
}
