public import Foundation

/// One alert: a state change a person must hear about, once.
///
/// Sinks get it as JSON (``Alert/json()``) on stdin or in a webhook body. The field names are
/// snake_case and stable: scripts and chat integrations parse them.
public struct Alert: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        /// A blocker first reached the alert severity.
        case raised
        /// An alerted blocker reached a higher severity.
        case escalated
        /// An alerted blocker is gone (or below the alert severity) for `clear_after_seconds`.
        case cleared
        /// PostgreSQL ended a deadlock.
        case deadlock
    }

    /// Stable for one incident: the same id for its raise, escalations and clear, so a pager
    /// can deduplicate and auto-resolve on it (PagerDuty's `dedup_key`, Opsgenie's alias).
    public var alertID: String
    public var kind: Kind
    public var severity: BlockerSeverity
    public var previousSeverity: BlockerSeverity?
    /// When lockvault saw the change (the snapshot's time).
    public var at: Date
    public var cluster: String
    /// One line for a pager or chat message.
    public var summary: String
    public var blocker: AlertBlocker?
    public var blockedCount: Int
    /// The sessions it holds up (at most ``AlertPolicy/maxListedSessions``).
    public var blockedSessions: [AlertBlockedSession]
    public var blockingSeconds: Double?
    public var relation: String?
    /// The mode it holds on the contended object, or, for a queued request, the mode it is
    /// queued for (see ``blocksAs``).
    public var lockMode: String?
    /// holder, queued or holder+queued (``BlocksAs``); nil for a deadlock.
    public var blocksAs: String? = nil
    public var recommendedAction: String?
    public var deadlock: AlertDeadlock?
    /// For a cleared alert: the blocking episode it was part of (rooted at its blocker, or, for a
    /// blocker that was not a root, the one it waited in), as known when the alert cleared.
    public var episode: AlertEpisode? = nil

    enum CodingKeys: String, CodingKey {
        case alertID = "alert_id", kind, severity, previousSeverity = "previous_severity", at, cluster, summary, blocker
        case blockedCount = "blocked_count", blockedSessions = "blocked_sessions", blockingSeconds = "blocking_seconds"
        case relation, lockMode = "lock_mode", blocksAs = "blocks_as", recommendedAction = "recommended_action", deadlock, episode
    }

    /// One line of JSON (no newlines inside; timestamps ISO 8601 UTC with fractional seconds).
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(VaultHash.timestamp(date))
        }
        // Encoding plain values cannot fail; an empty object is better than a crash.
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// The blocking session (or prepared transaction) an alert is about.
public struct AlertBlocker: Sendable, Hashable, Codable {
    public var pid: Int32?
    public var backendStart: Date?
    public var preparedGid: String?
    public var user: String?
    public var database: String?
    public var applicationName: String?
    public var clientAddress: String?
    public var state: String?
    public var transactionSeconds: Double?
    /// Truncated to the policy's `queryTextLength`.
    public var query: String?

    enum CodingKeys: String, CodingKey {
        case pid, backendStart = "backend_start", preparedGid = "prepared_gid", user, database, applicationName = "application_name"
        case clientAddress = "client_address", state, transactionSeconds = "transaction_seconds", query
    }
}

public struct AlertBlockedSession: Sendable, Hashable, Codable {
    public var pid: Int32
    public var user: String?
    public var applicationName: String?
    public var waitingSeconds: Double?
    public var query: String?

    enum CodingKeys: String, CodingKey {
        case pid, user, applicationName = "application_name", waitingSeconds = "waiting_seconds", query
    }
}

/// A blocking episode as a cleared alert carries it (``EpisodeTracker``).
public struct AlertEpisode: Sendable, Hashable, Codable {
    public var id: String
    public var startedAt: Date
    /// nil while it is open (or its end awaits the server's word on a deadlock).
    public var endedAt: Date?
    public var durationSeconds: Double
    /// root_finished, root_terminated, … (``EpisodeEndedBy``); nil while open.
    public var endedBy: String?
    public var waitingSessions: Int
    public var peakWaiting: Int
    public var waitSecondsTotal: Double
    public var longestWaitSeconds: Double
    /// At most ``AlertPolicy/maxListedSessions``, longest wait first.
    public var waiters: [AlertEpisodeWaiter]

    enum CodingKeys: String, CodingKey {
        case id, startedAt = "started_at", endedAt = "ended_at", durationSeconds = "duration_seconds", endedBy = "ended_by"
        case waitingSessions = "waiting_sessions", peakWaiting = "peak_waiting", waitSecondsTotal = "wait_seconds_total"
        case longestWaitSeconds = "longest_wait_seconds", waiters
    }

    public init(_ e: Episode) {
        id = e.id
        startedAt = e.startedAt
        endedAt = e.endedBy == nil ? nil : e.endedAt
        durationSeconds = e.durationSeconds
        endedBy = e.endedBy?.rawValue
        waitingSessions = e.waiters.count
        peakWaiting = e.peakWaiting
        waitSecondsTotal = e.waitSecondsTotal
        longestWaitSeconds = e.longestWaitSeconds
        let until = e.endedAt ?? e.lastSeenAt
        waiters = e.waiters.sorted { $0.waited(upTo: until) > $1.waited(upTo: until) }.prefix(AlertPolicy.maxListedSessions).map {
            AlertEpisodeWaiter(pid: $0.pid, applicationName: $0.application, waitedSeconds: $0.waited(upTo: until))
        }
    }
}

public struct AlertEpisodeWaiter: Sendable, Hashable, Codable {
    public var pid: Int32
    public var applicationName: String?
    public var waitedSeconds: Double

    enum CodingKeys: String, CodingKey {
        case pid, applicationName = "application_name", waitedSeconds = "waited_seconds"
    }
}

public struct AlertDeadlock: Sendable, Hashable, Codable {
    public var database: String
    public var pids: [Int32]
    public var victimPid: Int32?
    /// The server log's report, truncated; nil when the log isn't configured.
    public var details: String?
    /// Which sources saw it: `counter`, `graph`, `server_log`.
    public var sources: [String]

    enum CodingKeys: String, CodingKey {
        case database, pids, victimPid = "victim_pid", details, sources
    }
}
