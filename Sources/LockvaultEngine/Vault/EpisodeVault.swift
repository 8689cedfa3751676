public import Foundation
public import LockvaultCore
public import PostgresClient

/// What the morning-after commands read from the vault: the episodes
/// (`blocking_episodes_dashboard`), one episode's story (`episode_story`), and the forest at a
/// past moment (`blocking_at`). Reads only; the vault decides, this decodes.
public enum EpisodeVault {
    /// Which episodes `lockvault episodes` lists: those that overlap [from, to] (to: now when nil).
    public struct Filter: Sendable {
        public var from: Date?
        /// With `from` nil: the last this many seconds, by the vault's clock.
        public var sinceSeconds: Double?
        public var to: Date?
        public var cluster: String?
        public var minSeverity: BlockerSeverity?
        public var limit: Int

        public init(from: Date? = nil, sinceSeconds: Double? = nil, to: Date? = nil, cluster: String? = nil, minSeverity: BlockerSeverity? = nil, limit: Int = 200) {
            self.from = from
            self.sinceSeconds = sinceSeconds
            self.to = to
            self.cluster = cluster
            self.minSeverity = minSeverity
            self.limit = limit
        }
    }

    /// Newest first.
    public static func episodes(on conn: PostgresConnection, _ filter: Filter) throws -> [EpisodeListRow] {
        let rows = try conn.query("""
            SELECT d.* FROM lock_monitoring.blocking_episodes_dashboard d
            WHERE d.started_at <= coalesce($3::timestamptz, now())
              AND coalesce(d.ended_at, now()) >= coalesce($1::timestamptz, now() - make_interval(secs => $2::float8), '-infinity')
              AND ($4::text IS NULL OR d.cluster_name = $4::text)
              AND ($5::int IS NULL OR array_position(ARRAY['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], d.max_severity) >= $5::int)
            ORDER BY d.started_at DESC, d.episode_id
            LIMIT $6::int
            """, [filter.from, filter.sinceSeconds, filter.to, filter.cluster, filter.minSeverity.map { BlockerSeverity.allCases.firstIndex(of: $0)! + 1 },
                  filter.limit])
        return try rows.map { r in
            EpisodeListRow(
                episodeID: try r.decode("episode_id"), clusterName: try r.decode("cluster_name"), startedAt: try r.decode("started_at"),
                endedAt: try r.decode("ended_at"), durationSeconds: try r.decode("duration_seconds", as: Double?.self) ?? 0,
                rootPid: try r.decode("root_pid"), rootUserName: try r.decode("root_user_name"), rootApplicationName: try r.decode("root_application_name"),
                rootState: try r.decode("root_state"), rootQuery: try r.decode("root_query"),
                waitingSessions: try r.decode("waiting_sessions", as: Int?.self) ?? 0, peakWaiting: try r.decode("peak_waiting", as: Int?.self) ?? 0,
                waitSecondsTotal: try r.decode("wait_seconds_total", as: Double?.self) ?? 0,
                longestWaitSeconds: try r.decode("longest_wait_seconds", as: Double?.self) ?? 0,
                maxSeverity: try r.decode("max_severity", as: String?.self) ?? "LOW", lockTargets: try r.decode("lock_targets", as: [String]?.self) ?? [],
                endedBy: try r.decode("ended_by"))
        }
    }

    /// The names of the clusters the vault records (fleet_status), for saying that a --cluster
    /// matches none.
    public static func clusterNames(on conn: PostgresConnection) throws -> [String] {
        try conn.query("SELECT DISTINCT cluster_name FROM lock_monitoring.fleet_status() ORDER BY 1").compactMap { try $0.decode("cluster_name", as: String?.self) }
    }

    /// One episode's story; nil when the vault has no episode with that id.
    public static func story(on conn: PostgresConnection, id: String) throws -> EpisodeStory? {
        guard let json = try conn.query("SELECT lock_monitoring.episode_story($1::text)::text AS story", [id]).first?.decode("story", as: String?.self) else {
            return nil
        }
        return try decodeStory(json)
    }

    /// The stories of these episodes, in this order (those the vault no longer has left out).
    public static func stories(on conn: PostgresConnection, ids: [String]) throws -> [EpisodeStory] {
        guard !ids.isEmpty else { return [] }
        return try conn.query("""
            SELECT lock_monitoring.episode_story(e.id)::text AS story FROM unnest($1::text[]) WITH ORDINALITY AS e(id, n) ORDER BY e.n
            """, [ids]).compactMap { try $0.decode("story", as: String?.self) }.map(decodeStory)
    }

    static func decodeStory(_ json: String) throws -> EpisodeStory {
        do {
            return try EpisodeStory.decode(Data(json.utf8))
        } catch {
            throw PostgresError(code: .queryFailed, message: "episode_story returned a story lockvault cannot read (\(error)); is the vault from a newer lockvault?")
        }
    }

    /// The forest as the vault recorded it at `at`. Throws the vault's refusal (SQLSTATE 22023:
    /// before the retained history, in the future, an unknown cluster; P0002: lockvault was not
    /// watching) as it came.
    public static func moment(on conn: PostgresConnection, at: Date, cluster: String?) throws -> (moment: RecordedMoment, cluster: String?) {
        let rows = try conn.query("SELECT * FROM lock_monitoring.blocking_at($1::timestamptz, $2::text)", [at, cluster])
        var sessions: [RecordedSession] = []
        var clusterName: String?, systemIdentifier = "0"
        for r in rows {
            clusterName = try r.decode("cluster_name")
            systemIdentifier = try r.decode("system_identifier", as: String?.self) ?? systemIdentifier
            let locks = try r.decode("locks", as: String?.self).map { try EpisodeStory.decoder.decode([RecordedSession.Lock].self, from: Data($0.utf8)) } ?? []
            let severity: String? = try r.decode("blocking_severity")
            sessions.append(RecordedSession(
                pid: try r.decode("session_pid"), gid: try r.decode("prepared_gid"), backendStart: try r.decode("backend_start"),
                user: try r.decode("user_name"), application: try r.decode("application_name"), client: try r.decode("client_addr"),
                database: try r.decode("database_name"), backendType: try r.decode("backend_type"), state: try r.decode("session_state"),
                isSuperuser: try r.decode("is_superuser"), xactStart: try r.decode("xact_start"), query: try r.decode("query"),
                waitingFor: try r.decode("waiting_for"),
                blocker: try severity.map { RecordedSession.Blocker(severity: $0, blockingStarted: try r.decode("blocking_started"),
                                                                    recommendedAction: try r.decode("recommended_action")) },
                locks: locks))
        }
        return (RecordedMoment(at: at, systemIdentifier: systemIdentifier, sessions: sessions), clusterName)
    }
}
