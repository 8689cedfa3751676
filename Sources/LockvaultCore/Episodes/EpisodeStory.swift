public import Foundation

/// One blocking episode as the vault tells it: the JSON of `lock_monitoring.episode_story(id)`,
/// decoded, and encoded again under the same names for `lockvault episode ID --json` and
/// `lockvault episodes --json` (the names the issue fixed: `id`, `startedAt`, `root.pid`,
/// `waiters[].waitedSeconds`, `endedBy`, …). Timestamps are ISO 8601 both ways.
public struct EpisodeStory: Codable, Sendable, Equatable {
    public var id: String
    public var cluster: String?
    public var startedAt: Date
    /// nil while the episode is open.
    public var endedAt: Date?
    /// To `endedAt`, or to the last cycle that saw it while open.
    public var durationSeconds: Double
    /// One of ``Ending``'s raw values; nil while open. Kept as text so that an ending a newer
    /// vault knows is still shown.
    public var endedBy: String?
    /// Periods inside the episode in which lockvault was not watching.
    public var gaps: [Gap]
    public var root: Root
    public var waiters: [Waiter]
    public var peakWaiting: Int
    public var peakAt: Date?
    /// Session-seconds lost: the sum over waiters of their time waiting within the episode.
    public var waitSecondsTotal: Double
    public var longestWaitSeconds: Double
    public var maxSeverity: String
    public var deepestChain: Int
    public var lockTargets: [String]
    /// A queued request (DDL waiting with others queued behind it) was part of it.
    public var queuedRequest: Bool
    public var decisions: [Decision]

    public init(id: String, cluster: String? = nil, startedAt: Date, endedAt: Date? = nil, durationSeconds: Double, endedBy: String? = nil,
                gaps: [Gap] = [], root: Root, waiters: [Waiter], peakWaiting: Int, peakAt: Date? = nil, waitSecondsTotal: Double,
                longestWaitSeconds: Double, maxSeverity: String, deepestChain: Int = 1, lockTargets: [String] = [], queuedRequest: Bool = false,
                decisions: [Decision] = []) {
        self.id = id
        self.cluster = cluster
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.durationSeconds = durationSeconds
        self.endedBy = endedBy
        self.gaps = gaps
        self.root = root
        self.waiters = waiters
        self.peakWaiting = peakWaiting
        self.peakAt = peakAt
        self.waitSecondsTotal = waitSecondsTotal
        self.longestWaitSeconds = longestWaitSeconds
        self.maxSeverity = maxSeverity
        self.deepestChain = deepestChain
        self.lockTargets = lockTargets
        self.queuedRequest = queuedRequest
        self.decisions = decisions
    }

    public struct Gap: Codable, Sendable, Equatable {
        public var from: Date
        public var to: Date

        public init(from: Date, to: Date) {
            self.from = from
            self.to = to
        }
    }

    /// The root blocker as first seen: a session, or a prepared transaction (`gid`, pid 0).
    public struct Root: Codable, Sendable, Equatable {
        public var pid: Int32
        public var backendStart: Date?
        public var gid: String?
        public var user: String?
        public var application: String?
        public var client: String?
        public var state: String?
        public var xactStart: Date?
        public var query: String?
        public var queryId: String?

        public init(pid: Int32, backendStart: Date? = nil, gid: String? = nil, user: String? = nil, application: String? = nil,
                    client: String? = nil, state: String? = nil, xactStart: Date? = nil, query: String? = nil, queryId: String? = nil) {
            self.pid = pid
            self.backendStart = backendStart
            self.gid = gid
            self.user = user
            self.application = application
            self.client = client
            self.state = state
            self.xactStart = xactStart
            self.query = query
            self.queryId = queryId
        }

        public var isPrepared: Bool { gid != nil }
    }

    /// A direct blocker of a waiter: its pid (0 = a prepared transaction) and how it blocks.
    public struct Blocker: Codable, Sendable, Equatable {
        public var pid: Int32
        public var kind: BlockKind

        public init(pid: Int32, kind: BlockKind) {
            self.pid = pid
            self.kind = kind
        }
    }

    public struct Waiter: Codable, Sendable, Equatable {
        public var pid: Int32
        public var backendStart: Date?
        public var user: String?
        public var application: String?
        public var firstWaitAt: Date
        /// nil when its end is not known: it stopped waiting while lockvault was not watching,
        /// or the episode is still open (the vault holds an open episode's waiters as they joined).
        public var lastWaitAt: Date?
        public var waitedSeconds: Double?
        /// Its longest single wait within the episode, when it waited more than once.
        public var longestWaitSeconds: Double?
        public var blockedBy: [Blocker]
        public var lockTarget: String?
        public var mode: String?
        public var query: String?

        public init(pid: Int32, backendStart: Date? = nil, user: String? = nil, application: String? = nil, firstWaitAt: Date, lastWaitAt: Date?,
                    waitedSeconds: Double?, longestWaitSeconds: Double? = nil, blockedBy: [Blocker], lockTarget: String? = nil, mode: String? = nil,
                    query: String? = nil) {
            self.pid = pid
            self.backendStart = backendStart
            self.user = user
            self.application = application
            self.firstWaitAt = firstWaitAt
            self.lastWaitAt = lastWaitAt
            self.waitedSeconds = waitedSeconds
            self.longestWaitSeconds = longestWaitSeconds
            self.blockedBy = blockedBy
            self.lockTarget = lockTarget
            self.mode = mode
            self.query = query
        }

        /// Hard when it waited for a lock someone held (for any of its blockers), soft when it was
        /// only queued behind others' requests.
        public var kind: BlockKind { blockedBy.contains { $0.kind == .hard } || blockedBy.isEmpty ? .hard : .soft }
    }

    /// A resolver decision taken on the episode.
    public struct Decision: Codable, Sendable, Equatable {
        public var at: Date
        public var action: String
        public var pid: Int32
        public var executed: Bool
        public var outcome: String?

        public init(at: Date, action: String, pid: Int32, executed: Bool, outcome: String? = nil) {
            self.at = at
            self.action = action
            self.pid = pid
            self.executed = executed
            self.outcome = outcome
        }
    }

    /// How an episode ended (`ended_by`).
    public enum Ending: String, Sendable, CaseIterable {
        case rootFinished = "root_finished"
        case rootDisconnected = "root_disconnected"
        case rootCancelled = "root_cancelled"
        case rootTerminated = "root_terminated"
        case queueCancelled = "queue_cancelled"
        case waitersGaveUp = "waiters_gave_up"
        case deadlock
        case unobserved
    }

    public var ending: Ending? { endedBy.flatMap(Ending.init(rawValue:)) }
    /// The cluster's name, when it has one (the vault writes "-" for a cluster without a name).
    public var clusterName: String? { cluster.flatMap { $0.isEmpty || $0 == "-" ? nil : $0 } }
    public var isOpen: Bool { endedAt == nil }
    /// The last moment the story covers: its end, or while open its start plus its duration.
    public var lastMoment: Date { endedAt ?? startedAt.addingTimeInterval(durationSeconds) }

    /// Until when `w` waited as far as the picture and the tree go: its last wait, or when that
    /// is unknown the story's last moment.
    public func waitEnd(_ w: Waiter) -> Date { w.lastWaitAt ?? lastMoment }

    /// How long `w` waited, for people: "waited 7.2 s", or why that is not known.
    public func waited(_ w: Waiter) -> String {
        if let s = w.waitedSeconds { return "waited " + TimeText.seconds(s) }
        return isOpen ? "still waiting" : "end of its wait unknown (lockvault was not watching)"
    }

    /// The waiter with this pid.
    public func waiter(_ pid: Int32) -> Waiter? { waiters.first { $0.pid == pid } }

    /// Decodes episode_story's JSON (timestamps as `to_json(timestamptz)` writes them).
    public static func decode(_ data: Data) throws -> EpisodeStory {
        try decoder.decode(EpisodeStory.self, from: data)
    }

    /// Decodes a JSON array of stories.
    public static func decodeList(_ data: Data) throws -> [EpisodeStory] {
        try decoder.decode([EpisodeStory].self, from: data)
    }

    public static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let text = try c.decode(String.self)
            guard let date = TimeText.parseTimestamp(text, zone: TimeZone(secondsFromGMT: 0)!) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "not a timestamp: \(text)")
            }
            return date
        }
        return d
    }

    /// Stories as the commands print them: sorted keys, ISO 8601 UTC with microseconds.
    public static func json(_ value: some Encodable, pretty: Bool = true) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(TimeText.iso8601(date))
        }
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Infinity", negativeInfinity: "-Infinity", nan: "NaN")
        return String(decoding: try e.encode(value), as: UTF8.self)
    }
}

// Decoded by hand where SQL's aggregates give null for nothing (jsonb_agg over no rows): an
// empty list, not a failure.
extension EpisodeStory {
    enum CodingKeys: String, CodingKey {
        case id, cluster, startedAt, endedAt, durationSeconds, endedBy, gaps, root, waiters, peakWaiting, peakAt, waitSecondsTotal
        case longestWaitSeconds, maxSeverity, deepestChain, lockTargets, queuedRequest, decisions
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        cluster = try c.decodeIfPresent(String.self, forKey: .cluster)
        startedAt = try c.decode(Date.self, forKey: .startedAt)
        endedAt = try c.decodeIfPresent(Date.self, forKey: .endedAt)
        durationSeconds = try c.decodeIfPresent(Double.self, forKey: .durationSeconds) ?? 0
        endedBy = try c.decodeIfPresent(String.self, forKey: .endedBy)
        gaps = try c.decodeIfPresent([Gap].self, forKey: .gaps) ?? []
        root = try c.decode(Root.self, forKey: .root)
        waiters = try c.decodeIfPresent([Waiter].self, forKey: .waiters) ?? []
        peakWaiting = try c.decodeIfPresent(Int.self, forKey: .peakWaiting) ?? 0
        peakAt = try c.decodeIfPresent(Date.self, forKey: .peakAt)
        waitSecondsTotal = try c.decodeIfPresent(Double.self, forKey: .waitSecondsTotal) ?? 0
        longestWaitSeconds = try c.decodeIfPresent(Double.self, forKey: .longestWaitSeconds) ?? 0
        maxSeverity = try c.decodeIfPresent(String.self, forKey: .maxSeverity) ?? "LOW"
        deepestChain = try c.decodeIfPresent(Int.self, forKey: .deepestChain) ?? 1
        lockTargets = try c.decodeIfPresent([String].self, forKey: .lockTargets) ?? []
        queuedRequest = try c.decodeIfPresent(Bool.self, forKey: .queuedRequest) ?? false
        decisions = try c.decodeIfPresent([Decision].self, forKey: .decisions) ?? []
    }
}

extension EpisodeStory.Waiter {
    enum CodingKeys: String, CodingKey {
        case pid, backendStart, user, application, firstWaitAt, lastWaitAt, waitedSeconds, longestWaitSeconds, blockedBy, lockTarget, mode, query
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pid = try c.decode(Int32.self, forKey: .pid)
        backendStart = try c.decodeIfPresent(Date.self, forKey: .backendStart)
        user = try c.decodeIfPresent(String.self, forKey: .user)
        application = try c.decodeIfPresent(String.self, forKey: .application)
        firstWaitAt = try c.decode(Date.self, forKey: .firstWaitAt)
        lastWaitAt = try c.decodeIfPresent(Date.self, forKey: .lastWaitAt)
        waitedSeconds = try c.decodeIfPresent(Double.self, forKey: .waitedSeconds)
        longestWaitSeconds = try c.decodeIfPresent(Double.self, forKey: .longestWaitSeconds)
        blockedBy = try c.decodeIfPresent([EpisodeStory.Blocker].self, forKey: .blockedBy) ?? []
        lockTarget = try c.decodeIfPresent(String.self, forKey: .lockTarget)
        mode = try c.decodeIfPresent(String.self, forKey: .mode)
        query = try c.decodeIfPresent(String.self, forKey: .query)
    }
}

// Encoded by hand so that an absent value is written as null (`"endedAt": null` while open), as
// the vault's JSON has it, rather than left out.
extension EpisodeStory {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(cluster, forKey: .cluster)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(endedAt, forKey: .endedAt)
        try c.encode(durationSeconds, forKey: .durationSeconds)
        try c.encode(endedBy, forKey: .endedBy)
        try c.encode(gaps, forKey: .gaps)
        try c.encode(root, forKey: .root)
        try c.encode(waiters, forKey: .waiters)
        try c.encode(peakWaiting, forKey: .peakWaiting)
        try c.encode(peakAt, forKey: .peakAt)
        try c.encode(waitSecondsTotal, forKey: .waitSecondsTotal)
        try c.encode(longestWaitSeconds, forKey: .longestWaitSeconds)
        try c.encode(maxSeverity, forKey: .maxSeverity)
        try c.encode(deepestChain, forKey: .deepestChain)
        try c.encode(lockTargets, forKey: .lockTargets)
        try c.encode(queuedRequest, forKey: .queuedRequest)
        try c.encode(decisions, forKey: .decisions)
    }
}

extension EpisodeStory.Root {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(pid, forKey: .pid)
        try c.encode(backendStart, forKey: .backendStart)
        try c.encode(gid, forKey: .gid)
        try c.encode(user, forKey: .user)
        try c.encode(application, forKey: .application)
        try c.encode(client, forKey: .client)
        try c.encode(state, forKey: .state)
        try c.encode(xactStart, forKey: .xactStart)
        try c.encode(query, forKey: .query)
        try c.encode(queryId, forKey: .queryId)
    }
}

extension EpisodeStory.Waiter {
    public func encode(to encoder: any Encoder) throws {
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
}

extension EpisodeStory.Decision {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(at, forKey: .at)
        try c.encode(action, forKey: .action)
        try c.encode(pid, forKey: .pid)
        try c.encode(executed, forKey: .executed)
        try c.encode(outcome, forKey: .outcome)
    }
}
