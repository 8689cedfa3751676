import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient
import Testing

extension LiveDatabaseSuite {
    @Suite struct DeadlockLiveTests {
        /// A real deadlock: PostgreSQL's detector breaks it after deadlock_timeout (1 s), usually
        /// between samples. lockvault must record it exactly once, with both participants, from
        /// the counter and the server log (and the live cycle if a sample caught it).
        @Test func aRealDeadlockIsRecordedOnceWithBothParticipants() async throws {
            let log = try #require(LiveDatabase.serverLogPath, "the test harness sets LOCKVAULT_TEST_SERVER_LOG")
            try await EngineScenario.run(serverLog: log) { s in
                try s.admin.executeScript("CREATE TABLE dl (id int PRIMARY KEY, v int); INSERT INTO dl VALUES (1, 0), (2, 0)")
                try await s.cycle()   // baseline: counters and log position
                let a = try await s.session("lv-dl-a"), b = try await s.session("lv-dl-b")
                try await a.run("BEGIN", "UPDATE dl SET v = 1 WHERE id = 1")
                try await b.run("BEGIN", "UPDATE dl SET v = 2 WHERE id = 2")
                let aTask = a.start("UPDATE dl SET v = 1 WHERE id = 2")
                try await s.waitForWaiters(1)
                let bTask = b.start("UPDATE dl SET v = 2 WHERE id = 1")

                // Keep sampling while the server detects and breaks it (it may catch the cycle live).
                let done = Task { (await aTask.value, await bTask.value) }
                try await waitUntil("the server breaks the deadlock", timeout: .seconds(30), every: .milliseconds(150)) {
                    try await s.cycle()
                    return try s.rows("SELECT 1 FROM pg_stat_activity WHERE pid = ANY($1) AND wait_event_type = 'Lock'", [[a.pid, b.pid]]).isEmpty
                }
                let (ra, rb) = await done.value
                let failures = [ra, rb].filter { if case .failure(let e) = $0 { return e.sqlState == SQLState.deadlockDetected }; return false }
                #expect(failures.count == 1, "exactly one participant was cancelled with 40P01")
                // Sessions flush their statistics (the deadlock counter) once out of the transaction.
                try await a.run("ROLLBACK"); try await b.run("ROLLBACK")

                var seen: [String] = []
                do {
                    try await waitUntil("deadlock recorded from counter and server log", timeout: .seconds(30), every: .milliseconds(150)) {
                        try await s.cycle()
                        seen = try s.rows("SELECT sources FROM lock_monitoring.deadlock_events_dashboard").map { try $0.decode("sources", as: String.self) }
                        guard let sources = seen.first else { return false }
                        return sources.contains("counter") && sources.contains("server_log")
                    }
                } catch {
                    Issue.record("recorded so far: \(seen)")
                    throw error
                }

                let rows = try s.rows("SELECT participant_pids, victim_pid, database_name, details FROM lock_monitoring.deadlock_events_dashboard")
                #expect(rows.count == 1, "one deadlock, one row")
                let row = try #require(rows.first)
                #expect(try row.decode("participant_pids", as: [Int32].self).sorted() == [a.pid, b.pid].sorted())
                let victim = try row.decode("victim_pid", as: Int32.self)
                #expect(victim == a.pid || victim == b.pid)
                #expect(try row.decode("database_name", as: String.self) == s.database)
                let details = try s.rows("SELECT details FROM lock_monitoring.deadlock_event_s WHERE load_end_date IS NULL")[0].decode("details", as: String.self)
                #expect(details.contains("Process \(a.pid): UPDATE dl SET v = 1 WHERE id = 2"), "\(details)")
                #expect(details.contains("waits for ShareLock on transaction"))
                let involved = try s.rows("""
                    SELECT count(*) AS n FROM lock_monitoring.deadlock_involvement_l l JOIN lock_monitoring.deadlock_involvement_s x USING (deadlock_involvement_hk)
                    WHERE x.load_end_date IS NULL
                    """)[0].decode("n", as: Int.self)
                #expect(involved == 2)
                // More cycles add nothing.
                for _ in 0..<5 { try await s.cycle() }
                #expect(try s.rows("SELECT count(*) AS n FROM lock_monitoring.deadlock_event_h")[0].decode("n", as: Int.self) == 1)
            }
        }
    


        /// The usual case at 1 Hz: the deadlock is broken between samples, so no cycle saw its
        /// sessions wait, and by the next cycle both are idle — sessions the sampler only counts.
        /// The vault must still name both participants (by pid and backend_start).
        @Test func aDeadlockBrokenBetweenSamplesNamesParticipantsThatWentIdle() async throws {
            let log = try #require(LiveDatabase.serverLogPath, "the test harness sets LOCKVAULT_TEST_SERVER_LOG")
            try await EngineScenario.run(serverLog: log) { s in
                try s.admin.executeScript("CREATE TABLE dl (id int PRIMARY KEY, v int); INSERT INTO dl VALUES (1, 0), (2, 0)")
                let a = try await s.session("lv-dli-a"), b = try await s.session("lv-dli-b")
                try await s.cycle()   // baseline: counters, log position, and a and b as sessions
                try await a.run("BEGIN", "UPDATE dl SET v = 1 WHERE id = 1")
                try await b.run("BEGIN", "UPDATE dl SET v = 2 WHERE id = 2")
                let aTask = a.start("UPDATE dl SET v = 1 WHERE id = 2")
                try await s.waitForWaiters(1)
                let bTask = b.start("UPDATE dl SET v = 2 WHERE id = 1")
                _ = (await aTask.value, await bTask.value)
                try await a.run("ROLLBACK"); try await b.run("ROLLBACK")

                try await waitUntil("deadlock recorded from counter and server log", timeout: .seconds(30), every: .milliseconds(150)) {
                    let outcome = try await s.cycle()
                    #expect(!outcome.snapshot!.backends.contains { $0.pid == a.pid || $0.pid == b.pid }, "idle sessions are only counted")
                    let sources = try s.rows("SELECT sources FROM lock_monitoring.deadlock_events_dashboard").map { try $0.decode("sources", as: String.self) }
                    return sources.first.map { $0.contains("counter") && $0.contains("server_log") } ?? false
                }
                let involved = try s.rows("""
                    SELECT h.session_pid FROM lock_monitoring.deadlock_involvement_l l
                    JOIN lock_monitoring.deadlock_involvement_s x USING (deadlock_involvement_hk)
                    JOIN lock_monitoring.blocking_session_h h ON h.blocking_session_hk = l.blocking_session_hk
                    WHERE x.load_end_date IS NULL ORDER BY 1
                    """).map { try $0.decode("session_pid", as: Int32.self) }
                #expect(involved == [a.pid, b.pid].sorted())
            }
        }
    }
}
