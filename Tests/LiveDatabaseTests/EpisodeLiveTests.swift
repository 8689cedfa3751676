import Foundation
import LockvaultEngine
import PostgresClient
import TestSupport
import Testing

extension LiveDatabaseSuite {
    /// Blocking episodes through the real daemon (`lockvault run`, connected as the
    /// least-privileged monitor role; the blocking sessions as an ordinary role): what
    /// blocking_episodes_dashboard, episode_story() and the cleared alert say about each way
    /// an episode ends.
    @Suite struct EpisodeLiveTests {
        static func config(database: String, metricsPort: UInt16, alertFile: String, alertMin: String = "HIGH", extra: String = "") -> String {
            """
            target: { dsn: "dbname=\(database) user=\(EngineScenario.leastPrivilegedRole)" }
            sampling: { interval_seconds: 0.25, min_wait_seconds: 0.5, lock_timeout_ms: 600000, statement_timeout_ms: 600000 }
            severity: { medium_after_seconds: 1, high_after_seconds: 2, critical_after_seconds: 60, idle_in_transaction_factor: 1, exclusive_lock_escalates: false }
            alerts:
              min_severity: \(alertMin)
              clear_after_seconds: 0
              sinks:
                - {name: file, type: command, command: ["/bin/sh", "-c", "cat >> '\(alertFile)'"]}
            metrics: { listen: "127.0.0.1:\(metricsPort)" }
            \(extra)
            """
        }

        /// A migrated database whose tables belong to lv_app (so its sessions may ALTER them),
        /// with the roles the daemon and the sessions use.
        static func prepare(_ db: String, tables: [String]) throws -> PostgresConnection {
            let admin = try LiveDatabase.connect(database: db, applicationName: "lv-test-admin")
            try Migrator().apply(on: admin)
            try EngineScenario.ensureLeastPrivilegedRole()
            try ResolveLiveTests.ensureRoles()
            for t in tables { try admin.executeScript("CREATE TABLE \(t) (id int); INSERT INTO \(t) VALUES (1); ALTER TABLE \(t) OWNER TO lv_app") }
            return admin
        }

        static func startDaemon(_ configPath: String) async throws -> ChildProcess {
            let listener = try NotifySocketListener()
            let daemon = try await ChildProcess(lockvault: ["run", "--config", configPath], environment: ["NOTIFY_SOCKET": listener.path], combinedOutput: true)
            var log: [String] = []
            do {
                _ = try DaemonLiveTests.expect(listener, "READY=1", into: &log) { $0 == "READY=1" }
            } catch {
                Issue.record("the daemon said: \(daemon.output.suffix(2000))")
                throw error
            }
            return daemon
        }

        struct EpisodeRow {
            var id: String
            var rootPid: Int32?
            var application: String?
            var endedBy: String?
            var duration: Double
            var waitSeconds: Double
            var waiting: Int
        }

        static func episodes(_ admin: PostgresConnection) throws -> [EpisodeRow] {
            try admin.query("""
                SELECT episode_id, root_pid, root_application_name, ended_by, duration_seconds, wait_seconds_total, waiting_sessions
                FROM lock_monitoring.blocking_episodes_dashboard
                """).map {
                EpisodeRow(id: try $0.decode("episode_id"), rootPid: try $0.decode("root_pid"), application: try $0.decode("root_application_name"),
                           endedBy: try $0.decode("ended_by"), duration: try $0.decode("duration_seconds"),
                           waitSeconds: try $0.decode("wait_seconds_total"), waiting: try $0.decode("waiting_sessions"))
            }
        }

        /// Waits until the episode whose root runs `application` has ended; returns its row.
        static func ended(_ admin: PostgresConnection, application: String, timeout: Duration = .seconds(20)) async throws -> EpisodeRow {
            var found: EpisodeRow?
            try await waitUntil("the episode rooted at \(application) ends", timeout: timeout, every: .milliseconds(100)) {
                found = try episodes(admin).first { $0.application == application && $0.endedBy != nil }
                return found != nil
            }
            return found!
        }

        static func story(_ admin: PostgresConnection, _ id: String) throws -> [String: Any] {
            let text = try #require(try admin.query("SELECT lock_monitoring.episode_story($1)::text AS s", [id])[0].decode("s", as: String?.self))
            return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        }

        static func alerts(_ path: String) -> [[String: Any]] {
            AlertsLiveTests.lines(path).compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        }

        /// The cleared alert of the blocker `pid`, once it is in the sink's file.
        static func cleared(_ path: String, blocker pid: Int32) async throws -> [String: Any] {
            var found: [String: Any]?
            try await waitUntil("the cleared alert of pid \(pid)", timeout: .seconds(15), every: .milliseconds(100)) {
                found = alerts(path).last { ($0["kind"] as? String) == "cleared" && (($0["blocker"] as? [String: Any])?["pid"] as? Int) == Int(pid) }
                return found != nil
            }
            return found!
        }

        static func waiting(_ admin: PostgresConnection, _ pids: [Int32], timeout: Duration = .seconds(20)) async throws {
            let list = "{" + pids.map(String.init).joined(separator: ",") + "}"
            try await waitUntil("\(pids) wait for a lock", timeout: timeout) {
                try admin.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid = ANY ($1::int4[])", [list])[0]
                    .decode("n", as: Int.self) == pids.count
            }
        }

        /// The DDL pile-up, with lockvault restarted in the middle: H reads in an open transaction,
        /// M's ALTER TABLE queues behind it, R1 and R2 queue behind M; H commits ~7 s later.
        @Test func theDDLPileUpIsOneEpisodeRootedAtTheReaderAcrossARestart() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let admin = try Self.prepare(db, tables: ["t"])
                defer { admin.close() }
                let alertFile = FileManager.default.temporaryDirectory.appendingPathComponent("lv-ep-\(UUID().uuidString.prefix(8)).jsonl").path
                defer { unlink(alertFile) }
                let port = try await LoopbackHTTP.freePort()
                let configPath = try writeTemporaryConfig(Self.config(database: db, metricsPort: port, alertFile: alertFile))
                defer { unlink(configPath) }
                var daemon = try await Self.startDaemon(configPath)

                let h = try await BackgroundSession(database: db, applicationName: "lv-ep-report", user: "lv_app")
                let m = try await BackgroundSession(database: db, applicationName: "lv-ep-migrate", user: "lv_app")
                let r1 = try await BackgroundSession(database: db, applicationName: "lv-ep-web", user: "lv_app")
                let r2 = try await BackgroundSession(database: db, applicationName: "lv-ep-web", user: "lv_app")
                try await h.run("BEGIN", "SELECT * FROM t")
                let alter = m.start("ALTER TABLE t ADD COLUMN c int")
                try await Self.waiting(admin, [m.pid])
                let reads = [r1.start("SELECT * FROM t"), r2.start("SELECT * FROM t")]
                try await Self.waiting(admin, [m.pid, r1.pid, r2.pid])
                let waitStarts = try Dictionary(uniqueKeysWithValues: admin.query(
                    "SELECT pid, waitstart FROM pg_locks WHERE NOT granted AND pid = ANY ($1::int4[])", ["{\(m.pid),\(r1.pid),\(r2.pid)}"]).map {
                    (try $0.decode("pid", as: Int32.self), try $0.decode("waitstart", as: Date.self))
                })

                var open: EpisodeRow?
                try await waitUntil("the episode is recorded open", every: .milliseconds(100)) {
                    open = try Self.episodes(admin).first { $0.rootPid == h.pid && $0.endedBy == nil }
                    return open != nil
                }
                // Restart lockvault in the middle of the episode.
                daemon.signal(SIGTERM)
                #expect(try await daemon.waitForExit(timeout: .seconds(30)).status == 0)
                daemon = try await Self.startDaemon(configPath)
                try await waitUntil("the restarted daemon goes on with the open episode", every: .milliseconds(100)) {
                    try await AlertsLiveTests.scrape(port).value("lockvault_episodes_open") == 1
                }
                // H commits about 7 s after the pile-up began.
                let clock = ContinuousClock()
                let sinceStart = Date().timeIntervalSince(try #require(waitStarts[m.pid]))
                if sinceStart < 7 { try await clock.sleep(for: .seconds(7 - sinceStart)) }
                try await h.run("COMMIT")
                let committed = try admin.query("SELECT state_change FROM pg_stat_activity WHERE pid = $1", [h.pid])[0].decode("state_change", as: Date.self)
                if case .failure(let e) = await alter.value { Issue.record("ALTER TABLE failed: \(e)") }
                for r in reads { if case .failure(let e) = await r.value { Issue.record("a read failed: \(e)") } }

                let row = try await Self.ended(admin, application: "lv-ep-report")
                let all = try Self.episodes(admin)
                #expect(all.count == 1, "one episode, not one per root, per restart or per cycle: \(all)")
                #expect(row.id == open?.id, "the restart kept the episode's id")
                #expect(row.rootPid == h.pid)
                #expect(row.endedBy == "root_finished")
                let trueStart = try #require(waitStarts.values.min())
                let trueDuration = committed.timeIntervalSince(trueStart)
                let trueWait = waitStarts.values.reduce(0) { $0 + committed.timeIntervalSince($1) }
                #expect(abs(row.duration - trueDuration) <= 1.5, "duration \(row.duration) s, truly \(trueDuration) s")
                #expect(abs(row.waitSeconds - trueWait) <= 0.15 * trueWait, "wait-seconds \(row.waitSeconds), truly \(trueWait)")
                #expect(row.waiting == 3)

                let story = try Self.story(admin, row.id)
                #expect(story["id"] as? String == row.id)
                #expect(story["endedBy"] as? String == "root_finished")
                let root = try #require(story["root"] as? [String: Any])
                #expect(root["pid"] as? Int == Int(h.pid) && root["application"] as? String == "lv-ep-report" && root["user"] as? String == "lv_app")
                #expect((root["query"] as? String)?.contains("SELECT * FROM t") == true)
                let waiters = try #require(story["waiters"] as? [[String: Any]])
                #expect(Set(waiters.compactMap { $0["pid"] as? Int }) == Set([m.pid, r1.pid, r2.pid].map(Int.init)))
                let r1Story = try #require(waiters.first { $0["pid"] as? Int == Int(r1.pid) })
                #expect((r1Story["blockedBy"] as? [[String: Any]])?.first?["kind"] as? String == "soft", "R1 was queued behind M's request")
                #expect(story["queuedRequest"] as? Bool == true && story["deepestChain"] as? Int == 2)
                #expect(story["lockTargets"] as? [String] == ["relation public.t"])

                let alert = try await Self.cleared(alertFile, blocker: h.pid)
                let episode = try #require(alert["episode"] as? [String: Any])
                #expect(episode["id"] as? String == row.id)
                #expect(episode["ended_by"] as? String == "root_finished")
                #expect(episode["waiting_sessions"] as? Int == 3)
                #expect(abs((episode["wait_seconds_total"] as? Double ?? 0) - row.waitSeconds) < 0.01)
                let metrics = try await AlertsLiveTests.scrape(port)
                #expect(metrics.value("lockvault_episodes_total", ["ended_by": "root_finished"]) == 1)
                #expect(metrics.value("lockvault_episodes_open") == 0)
                try VaultConsistency.expectConsistent(admin)
                daemon.signal(SIGTERM)
                _ = try await daemon.waitForExit(timeout: .seconds(30))
                for s in [h, m, r1, r2] { await s.close() }
            }
        }

        /// One daemon with the resolver on (it ends only what the exclusions leave it) sees four
        /// episodes end four ways: a waiter's lock_timeout, a queued request cancelled, an idle
        /// root terminated, a prepared transaction committed; then a deadlock.
        @Test func eachWayAnEpisodeEnds() async throws {
            try await LiveDatabase.withTemporaryDatabase { db in
                let admin = try Self.prepare(db, tables: ["g", "q", "x", "p"])
                defer { admin.close() }
                let alertFile = FileManager.default.temporaryDirectory.appendingPathComponent("lv-ep-\(UUID().uuidString.prefix(8)).jsonl").path
                defer { unlink(alertFile) }
                let port = try await LoopbackHTTP.freePort()
                let configPath = try writeTemporaryConfig(Self.config(database: db, metricsPort: port, alertFile: alertFile, alertMin: "LOW", extra: """
                    resolve:
                      enabled: true
                      dry_run: false
                      min_severity: LOW
                      kill_threshold_seconds: 1
                      cancel_queued_after_seconds: 1
                      max_actions_per_cycle: 5
                      max_terminations_per_minute: 10
                      exclude: { applications: ["/^lv-ep-keep/"] }
                    """))
                defer { unlink(configPath) }
                let daemon = try await Self.startDaemon(configPath)
                var sessions: [BackgroundSession] = []
                func session(_ app: String, user: String? = "lv_app") async throws -> BackgroundSession {
                    let s = try await BackgroundSession(database: db, applicationName: app, user: user)
                    sessions.append(s)
                    return s
                }

                // 1. A waiter's lock_timeout fires while the root (excluded) still holds.
                let keeper = try await session("lv-ep-keep-1")
                try await keeper.run("BEGIN", "LOCK TABLE g IN ACCESS EXCLUSIVE MODE")
                let impatient = try await session("lv-ep-impatient")
                try await impatient.run("SET lock_timeout = '1500ms'")
                if case .success = await impatient.start("SELECT * FROM g").value { Issue.record("the waiter was expected to time out") }
                let gaveUp = try await Self.ended(admin, application: "lv-ep-keep-1")
                #expect(gaveUp.endedBy == "waiters_gave_up")
                #expect(gaveUp.waiting == 1 && gaveUp.waitSeconds >= 1)
                try await keeper.run("ROLLBACK")

                // 2. The resolver cancels a queued ALTER TABLE (--cancel-queued-after): the reader behind it goes on.
                let reader = try await session("lv-ep-keep-2")
                try await reader.run("BEGIN", "SELECT * FROM q")
                let ddl = try await session("lv-ep-ddl")
                let alter = ddl.start("ALTER TABLE q ADD COLUMN c int")
                try await Self.waiting(admin, [ddl.pid])
                let behind = try await session("lv-ep-web")
                let read = behind.start("SELECT * FROM q")
                if case .success = await alter.value { Issue.record("the queued ALTER TABLE was expected to be cancelled") }
                if case .failure(let e) = await read.value { Issue.record("the read behind it failed: \(e)") }
                let cancelled = try await Self.ended(admin, application: "lv-ep-keep-2")
                #expect(cancelled.endedBy == "queue_cancelled")
                let cancelStory = try Self.story(admin, cancelled.id)
                let decisions = try #require(cancelStory["decisions"] as? [[String: Any]])
                #expect(decisions.contains { $0["action"] as? String == "cancelled" && $0["pid"] as? Int == Int(ddl.pid) && $0["executed"] as? Bool == true })
                try await reader.run("ROLLBACK")

                // 3. An idle-in-transaction root the resolver terminates.
                let idle = try await session("lv-ep-idle")
                try await idle.run("BEGIN", "LOCK TABLE x IN SHARE MODE")
                let writer = try await session("lv-ep-writer")
                if case .failure(let e) = await writer.start("INSERT INTO x VALUES (2)").value { Issue.record("the insert failed: \(e)") }
                let terminated = try await Self.ended(admin, application: "lv-ep-idle")
                #expect(terminated.endedBy == "root_terminated")
                #expect(terminated.rootPid == idle.pid)
                let alert = try await Self.cleared(alertFile, blocker: idle.pid)
                let episode = try #require(alert["episode"] as? [String: Any])
                #expect(episode["id"] as? String == terminated.id && episode["ended_by"] as? String == "root_terminated")

                // 4. A prepared transaction root, committed.
                let preparer = try await session("lv-ep-prepare", user: nil)
                try await preparer.run("BEGIN", "LOCK TABLE p IN ACCESS EXCLUSIVE MODE", "PREPARE TRANSACTION 'lv-ep-prepared'")
                let stuck = try await session("lv-ep-stuck")
                let waitingRead = stuck.start("SELECT * FROM p")
                try await waitUntil("the prepared transaction's episode is recorded", every: .milliseconds(100)) {
                    try Self.episodes(admin).contains { $0.rootPid == nil && $0.endedBy == nil }
                }
                try admin.execute("COMMIT PREPARED 'lv-ep-prepared'")
                if case .failure(let e) = await waitingRead.value { Issue.record("the read failed: \(e)") }
                var prepared: EpisodeRow?
                try await waitUntil("the prepared transaction's episode ends", every: .milliseconds(100)) {
                    prepared = try Self.episodes(admin).first { $0.rootPid == nil && $0.endedBy != nil }
                    return prepared != nil
                }
                #expect(prepared?.endedBy == "root_finished")
                let preparedID = try #require(prepared?.id)
                let preparedRoot = try #require(try Self.story(admin, preparedID)["root"] as? [String: Any])
                #expect(preparedRoot["gid"] as? String == "lv-ep-prepared" && preparedRoot["state"] as? String == "prepared")

                // 5. A deadlock, kept waiting long enough (deadlock_timeout 2 s) for the cycle to be seen.
                try admin.executeScript("CREATE TABLE dl (id int PRIMARY KEY, v int); INSERT INTO dl VALUES (1, 0), (2, 0)")
                let a = try await session("lv-ep-dl-a", user: nil), b = try await session("lv-ep-dl-b", user: nil)
                let before = try RealDeadlock.counter(db)
                try await a.run("SET deadlock_timeout = '2s'", "BEGIN", "UPDATE dl SET v = 1 WHERE id = 1")
                try await b.run("SET deadlock_timeout = '2s'", "BEGIN", "UPDATE dl SET v = 2 WHERE id = 2")
                let aTask = a.start("UPDATE dl SET v = 1 WHERE id = 2")
                try await Self.waiting(admin, [a.pid])
                let bTask = b.start("UPDATE dl SET v = 2 WHERE id = 1")
                _ = await (aTask.value, bTask.value)
                try await a.run("ROLLBACK")
                try await b.run("ROLLBACK")
                try await RealDeadlock.waitForCounter(db, above: before)
                var deadlock: EpisodeRow?
                try await waitUntil("the deadlock's episode ends", every: .milliseconds(100)) {
                    deadlock = try Self.episodes(admin).first { [a.pid, b.pid].contains($0.rootPid ?? -1) && $0.endedBy != nil }
                    return deadlock != nil
                }
                #expect(deadlock?.endedBy == "deadlock")

                let metrics = try await AlertsLiveTests.scrape(port)
                for (how, n) in [("waiters_gave_up", 1.0), ("queue_cancelled", 1), ("root_terminated", 1), ("root_finished", 1), ("deadlock", 1)] {
                    #expect(metrics.value("lockvault_episodes_total", ["ended_by": how]) == n, "\(how)")
                }
                #expect((metrics.value("lockvault_episode_wait_seconds_total") ?? 0) > 0)
                try VaultConsistency.expectConsistent(admin)
                daemon.signal(SIGTERM)
                _ = try await daemon.waitForExit(timeout: .seconds(30))
                for s in sessions { await s.close() }
            }
        }
    }
}
