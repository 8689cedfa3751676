import Foundation
import LockvaultEngine
import PostgresClient
import TestSupport
import Testing

extension LiveDatabaseSuite {
    /// The morning after, as a DBA reads it with a role that may only read the vault: the DDL
    /// pile-up (H reads in an open transaction, M's ALTER TABLE queues behind it, R1 and R2 queue
    /// behind M, H commits) recorded by lockvault's cycles, then told by `lockvault episodes`,
    /// `lockvault episode ID` (text, JSON, picture) and `lockvault blocking --at` a moment inside
    /// it; and the bad input those commands refuse with exit 64.
    ///
    /// The episode's timing (duration, wait-seconds against the server's own clock) is
    /// EpisodeLiveTests' to check, through the daemon; here the cycles run as fast as they can,
    /// so the whole pile-up lasts a second or two.
    @Suite struct EpisodeCommandLiveTests {
        /// A login role with lock_monitoring_role and nothing else: the DBA reading the vault.
        static let reader = "lv_reader"

        static func ensureReader() throws {
            let admin = try LiveDatabase.connect()
            defer { admin.close() }
            try admin.executeScript("""
                DO $$ BEGIN
                  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '\(reader)') THEN CREATE ROLE \(reader) LOGIN; END IF;
                END $$;
                GRANT lock_monitoring_role TO \(reader);
                """)
        }

        static func json(_ r: ChildProcess.Result, sourceLocation: SourceLocation = #_sourceLocation) throws -> Any {
            #expect(r.status == 0 && r.stderr.isEmpty, "\(r)", sourceLocation: sourceLocation)
            return try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
        }

        @Test func theDDLPileUpToldByEpisodesEpisodeAndBlockingAt() async throws {
            try ResolveLiveTests.ensureRoles()
            // Waits younger than 0.3 s make no episode: the moment after H commits, when R1 and R2
            // wait for M's ALTER TABLE to finish, is not a second one.
            try await EngineScenario.run(configure: { $0.sampling.snapshot.minWaitSeconds = 0.3 }) { s in
                try Self.ensureReader()
                try s.admin.executeScript("CREATE TABLE t (id int); INSERT INTO t VALUES (1); ALTER TABLE t OWNER TO lv_app;")
                let h = try await s.session("lv-cli-report", user: "lv_app")
                let m = try await s.session("lv-cli-migrate", user: "lv_app")
                let r1 = try await s.session("lv-cli-web-1", user: "lv_app")
                let r2 = try await s.session("lv-cli-web-2", user: "lv_app")
                try await h.run("BEGIN", "SELECT * FROM t")
                let alter = m.start("ALTER TABLE t ADD COLUMN c int")
                try await s.waitForWaiters(1)
                let reads = [r1.start("SELECT * FROM t"), r2.start("SELECT * FROM t")]
                try await s.waitForWaiters(3)

                // Cycles until the vault holds the open episode and M recorded as queued ahead of R1
                // and R2; a moment after that cycle is inside the episode.
                var inside: Date?
                try await waitUntil("the vault records the open episode and M queued behind H") {
                    try await s.cycle()
                    let open = try s.rows("SELECT count(*) AS n FROM lock_monitoring.blocking_episodes_dashboard WHERE root_pid = $1 AND ended_by IS NULL",
                                          [h.pid])[0].decode("n", as: Int.self)
                    let queued = try s.rows("SELECT count(*) AS n FROM lock_monitoring.blocking_sessions_dashboard WHERE session_pid = $1 AND blocks_as = 'queued'",
                                            [m.pid])[0].decode("n", as: Int.self)
                    if open == 1 && queued == 1 { inside = try s.rows("SELECT now() AS t")[0].decode("t", as: Date.self) }
                    return inside != nil
                }
                try await s.cycle()
                try await h.run("COMMIT")
                if case .failure(let e) = await alter.value { Issue.record("ALTER TABLE failed: \(e)") }
                for r in reads { if case .failure(let e) = await r.value { Issue.record("a read failed: \(e)") } }
                try await waitUntil("the episode ends") {
                    try await s.cycle()
                    return try s.rows("SELECT count(*) AS n FROM lock_monitoring.blocking_episodes_dashboard WHERE ended_by IS NOT NULL")[0]
                        .decode("n", as: Int.self) == 1
                }

                let dsn = try LiveDatabase.conninfo(database: s.database, user: Self.reader)
                try await Self.expectEpisodes(dsn: dsn, h: h.pid, waiters: [m.pid, r1.pid, r2.pid])
                try await Self.expectBlockingAt(try #require(inside), dsn: dsn, h: h.pid, m: m.pid)
                try await Self.expectBadInputRefused(dsn: dsn)
                try await Self.expectUnwatchedMomentSaid(s, dsn: dsn)
            }
        }

        /// `episodes --json` lists exactly one episode, rooted at H, with waiters M, R1, R2, ended
        /// by H's commit; the table, the story and the picture say the same.
        static func expectEpisodes(dsn: String, h: Int32, waiters: [Int32]) async throws {
            let list = try #require(try json(try await ChildProcess.lockvault(["episodes", "--json", "--dsn", dsn])) as? [[String: Any]])
            #expect(list.count == 1, "exactly one episode: \(list)")
            let episode = try #require(list.first)
            let id = try #require(episode["id"] as? String)
            let root = try #require(episode["root"] as? [String: Any])
            #expect(root["pid"] as? Int == Int(h) && root["application"] as? String == "lv-cli-report" && root["user"] as? String == "lv_app", "\(root)")
            #expect(root["backendStart"] is String && root["state"] as? String == "idle in transaction", "\(root)")
            let listed = try #require(episode["waiters"] as? [[String: Any]])
            #expect(Set(listed.compactMap { $0["pid"] as? Int }) == Set(waiters.map(Int.init)), "\(listed)")
            #expect(listed.allSatisfy { ($0["waitedSeconds"] as? Double ?? 0) > 0 && $0["application"] is String }, "\(listed)")
            #expect(episode["endedBy"] as? String == "root_finished")
            #expect(episode["startedAt"] is String && episode["endedAt"] is String)
            for key in ["durationSeconds", "peakWaiting", "waitSecondsTotal", "longestWaitSeconds", "maxSeverity", "lockTargets"] {
                #expect(episode[key] != nil && !(episode[key] is NSNull), "\(key): \(episode)")
            }

            let table = try await ChildProcess.lockvault(["episodes", "--dsn", dsn])
            #expect(table.status == 0, "\(table)")
            let row = table.stdout.split(separator: "\n").first { $0.hasSuffix(id) }
            #expect(row?.contains("pid \(h) lv-cli-report (idle in transaction)") == true && row?.contains("root_finished") == true, "\(table)")

            let svgPath = FileManager.default.temporaryDirectory.appendingPathComponent("lv-episode-\(UUID().uuidString.prefix(8)).svg").path
            defer { unlink(svgPath) }
            let story = try await ChildProcess.lockvault(["episode", id, "--dsn", dsn, "--svg", svgPath])
            #expect(story.status == 0 && story.stderr.isEmpty, "\(story)")
            #expect(story.stdout.contains("Root: pid \(h) (lv-cli-report), user lv_app, idle in transaction"), "\(story)")
            for pid in waiters { #expect(story.stdout.contains("pid \(pid) (lv-cli-") && story.stdout.contains("starts waiting"), "\(pid): \(story)") }
            #expect(story.stdout.contains("└─ pid \(waiters[0]) (lv-cli-migrate)  waits (hard) for AccessExclusiveLock on relation public.t"), "\(story)")
            #expect(story.stdout.contains("How it ended: root_finished") && story.stdout.contains("lock_timeout: pid \(waiters[0])"), "\(story)")
            let svg = try String(contentsOfFile: svgPath, encoding: .utf8)
            for (pid, app) in zip([h] + waiters, ["lv-cli-report", "lv-cli-migrate", "lv-cli-web-1", "lv-cli-web-2"]) {
                #expect(svg.contains(">pid \(pid) · \(app)</text>"), "the picture names pid \(pid)")
            }
            #expect(svg.hasPrefix("<?xml") && svg.contains("ended: root finished"))

            let one = try #require(try json(try await ChildProcess.lockvault(["episode", id, "--json", "--dsn", dsn])) as? [String: Any])
            #expect(one["id"] as? String == id && (one["waiters"] as? [Any])?.count == 3)
        }

        /// `blocking --at` a moment inside the episode draws M queued behind H, as the live tree did.
        static func expectBlockingAt(_ inside: Date, dsn: String, h: Int32, m: Int32) async throws {
            let at = PostgresTimestamp.format(inside)
            let tree = try await ChildProcess.lockvault(["blocking", "--at", at, "--dsn", dsn])
            #expect(tree.status == 0 && tree.stderr.isEmpty, "\(tree)")
            let lines = tree.stdout.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("lockvault blocking at ") == true && lines.first?.contains("as the vault recorded it (cluster test)") == true, "\(tree)")
            let hLine = try #require(lines.firstIndex { $0.hasPrefix("pid \(h) ") }, "\(tree)")
            #expect(lines[hLine].contains("holds AccessShareLock on relation public.t"), "\(tree)")
            #expect(lines[hLine + 1].hasPrefix("└─ pid \(m) ") && lines[hLine + 1].contains("queued ahead of 2 for AccessExclusiveLock"), "\(tree)")
            let report = try #require(try json(try await ChildProcess.lockvault(["blocking", "--at", at, "--json", "--dsn", dsn])) as? [String: Any])
            let blockers = try #require(report["blockers"] as? [[String: Any]])
            let mj = try #require(blockers.first { (($0["participant"] as? [String: Any])?["session"] as? [String: Any])?["_0"] as? Int == Int(m) }, "\(report)")
            #expect(mj["blocksAs"] as? String == "queued" && mj["queuedForMode"] as? String == "AccessExclusiveLock", "\(mj)")
            #expect((mj["roots"] as? [[String: Any]])?.first?["session"] as? [String: Int] == ["_0": Int(h)], "\(mj)")
            #expect((report["forest"] as? [Any])?.count == 1)
        }

        /// A moment inside a gap in observation is said to be one (exit 1), not drawn as an empty
        /// tree. The gap is written as the daemon writes one after a restart.
        static func expectUnwatchedMomentSaid(_ s: EngineScenario, dsn: String) async throws {
            let sysid = try s.rows("SELECT system_identifier FROM lock_monitoring.monitored_cluster_h")[0].decode("system_identifier", as: String.self)
            let at = try s.rows("SELECT now() - interval '100 ms' AS t")[0].decode("t", as: Date.self)
            _ = try s.rows("""
                SELECT lock_monitoring.record_monitor_gap($1, 'test', jsonb_build_object('gap_start', $2::timestamptz - interval '1 s',
                    'gap_end', $2::timestamptz + interval '1 ms', 'reason', 'daemon restarted', 'hash_diff', '\\x00'))
                """, [sysid, at])
            let r = try await ChildProcess.lockvault(["blocking", "--at", PostgresTimestamp.format(at), "--dsn", dsn])
            BadInvocationLiveTests.expectOneLine(r, exit: 1, mentioning: ["lockvault blocking:", "lockvault was not watching cluster \"test\"", "daemon restarted"],
                                                 "blocking --at inside a gap")
        }

        /// What a DBA gets wrong at 3 a.m.: one line naming it, exit 64, nothing else.
        static func expectBadInputRefused(dsn: String) async throws {
            let cases: [([String], [String])] = [
                (["episode", "no-such-episode"], ["lockvault episode:", "no episode 'no-such-episode'"]),
                (["episodes", "--since", "a fortnight"], ["lockvault episodes:", "--since 'a fortnight' is not a duration"]),
                (["episodes", "--from", "2025-06-02 00:00+00", "--to", "2025-06-01 00:00+00"], ["lockvault episodes:", "--from", "is later than --to"]),
                (["blocking", "--at", "at three"], ["lockvault blocking:", "--at 'at three' is not a timestamp"]),
                (["blocking", "--at", "2001-01-01 00:00+00"], ["lockvault blocking:", "is before the retained history", "which begins at"]),
            ]
            for (args, words) in cases {
                let r = try await ChildProcess.lockvault(args + ["--dsn", dsn])
                BadInvocationLiveTests.expectOneLine(r, exit: 64, mentioning: words, args.joined(separator: " "))
                #expect(r.stdout.isEmpty, "\(r)")
            }
        }
    }
}
