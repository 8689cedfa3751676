import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient
import Testing

extension LiveDatabaseSuite {
    /// Names and query texts are data, whatever they contain: stored verbatim (truncated where
    /// configured), and shown on one clean line.
    @Suite struct HostileInputLiveTests {
        static let hostile = "x'); DROP TABLE t; --\\\" \n\t\u{1B}[31mred \\xC3\\x28 👩‍💻"

        @Test func hostileNamesAndHugeQueriesAreStoredVerbatimAndShownSafely() async throws {
            try await EngineScenario.run { s in
                try s.admin.execute("CREATE TABLE \"we;ird\"\"name\" (id int)")
                let holder = try await s.session("lv-holder")
                try await holder.run("SELECT set_config('application_name', $$\(Self.hostile)$$, false)",
                                     "BEGIN", "LOCK TABLE \"we;ird\"\"name\" IN ACCESS EXCLUSIVE MODE")
                let victim = try await s.session("lv-victim")
                let huge = "SELECT * FROM \"we;ird\"\"name\" /* \u{1B}[31mred " + String(repeating: "é\n", count: 500_000) + " */"
                let waiting = victim.start(huge)
                try await s.waitForWaiters(1)
                let outcome = try await s.cycle()

                // Stored verbatim: application_name as PostgreSQL kept it (63 bytes, non-ASCII as
                // '?'), the query as pg_stat_activity has it (track_activity_query_size) cut to
                // query_text_length, the relation name quoted.
                let storedApp = try s.rows("SELECT application_name FROM lock_monitoring.blocking_session_s")[0].decode("application_name", as: String.self)
                let serverApp = try s.rows("SELECT application_name FROM pg_stat_activity WHERE pid = $1", [holder.pid])[0].decode("application_name", as: String.self)
                #expect(storedApp == serverApp)
                #expect(storedApp.hasPrefix("x'); DROP TABLE t; --"))
                let storedQuery = try s.rows("SELECT query FROM lock_monitoring.lock_activity_s WHERE NOT lock_granted")[0].decode("query", as: String.self)
                let serverQuery = try s.rows("SELECT left(query, 1024) AS q FROM pg_stat_activity WHERE pid = $1", [victim.pid])[0].decode("q", as: String.self)
                #expect(storedQuery == serverQuery)
                #expect(storedQuery.count <= 1024 && huge.hasPrefix(storedQuery))
                let relation = try s.rows("SELECT relation_name FROM lock_monitoring.lock_activity_s WHERE NOT lock_granted")[0].decode("relation_name", as: String.self)
                #expect(relation == "public.\"we;ird\"\"name\"")

                // Shown safely: one line per session, control characters escaped, width bounded.
                let snapshot = try #require(outcome.snapshot)
                let text = BlockingForestRenderer().render(snapshot, forest: outcome.forest, assessments: outcome.assessments)
                let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
                #expect(lines.count == 2, "\(text)")
                #expect(!text.contains("\u{1B}"), "no raw escape sequences reach the terminal")
                #expect(text.contains("\\u{1b}[31mred"), "the query's escape sequence is shown escaped")
                #expect(lines.allSatisfy { $0.count < 600 })

                try await holder.run("ROLLBACK")
                _ = await waiting.value
            }
        }

        /// A role name with quotes, a backslash, a newline, SQL and an emoji: kept verbatim in
        /// the vault, and the alert about its session is still one line of valid JSON.
        @Test func aHostileRoleNameIsStoredVerbatim() async throws {
            let role = "ev'il\"; DROP ROLE x; --\\\n👩‍💻"
            let admin = try LiveDatabase.connect()
            defer { admin.close() }
            let ident = "\"" + role.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            _ = try? admin.execute("DROP ROLE IF EXISTS \(ident)")
            try admin.execute("CREATE ROLE \(ident) LOGIN")
            defer { _ = try? admin.execute("DROP ROLE IF EXISTS \(ident)") }
            try await EngineScenario.run { s in
                try s.admin.executeScript("CREATE TABLE t (id int); GRANT ALL ON t TO PUBLIC; GRANT CONNECT ON DATABASE \(s.database) TO PUBLIC")
                let holder = try await s.session("lv-holder", user: role)
                try await holder.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                let victim = try await s.session("lv-victim")
                let waiting = victim.start("SELECT * FROM t")
                try await s.waitForWaiters(1)
                let outcome = try await s.cycle()
                let stored = try s.rows("SELECT user_name FROM lock_monitoring.blocking_sessions_dashboard")[0].decode("user_name", as: String.self)
                #expect(stored == role)
                var policy = AlertPolicy()
                policy.minSeverity = .low
                var tracker = AlertTracker(policy: policy, cluster: "c")
                let snapshot = try #require(outcome.snapshot)
                let alerts = tracker.observe(snapshot, assessments: outcome.assessments, deadlocks: [])
                let alert = try #require(alerts.first)
                let json = alert.json()
                #expect(!json.contains("\n"))
                let decoded = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
                #expect((decoded["blocker"] as? [String: Any])?["user"] as? String == role)
                try await holder.run("ROLLBACK")
                _ = await waiting.value
            }
        }
    }
}
