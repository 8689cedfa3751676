import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient
import Testing

extension LiveDatabaseSuite {
    /// The auto-resolver against real sessions, with lockvault connected as a role holding only
    /// pg_monitor, pg_signal_backend and the vault writer role — no superuser.
    @Suite struct ResolveLiveTests {
        /// Roles: lv_app (ordinary application user), lv_etl (to exclude), lv_monitor (lockvault).
        static func ensureRoles() throws {
            let admin = try LiveDatabase.connect()
            defer { admin.close() }
            try admin.executeScript("""
                DO $$ BEGIN
                  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lv_app') THEN CREATE ROLE lv_app LOGIN; END IF;
                  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lv_etl') THEN CREATE ROLE lv_etl LOGIN; END IF;
                  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'lv_monitor') THEN CREATE ROLE lv_monitor LOGIN; END IF;
                END $$;
                GRANT pg_monitor, pg_signal_backend TO lv_monitor;
                """)
        }

        /// Fast thresholds: any blocker is CRITICAL at once (and, with ``policy(dryRun:_:)``'s zero
        /// kill threshold, eligible).
        static let fast = SeverityPolicy(mediumAfterSeconds: 0, highAfterSeconds: 0.001, criticalAfterSeconds: 0.002)

        static func policy(dryRun: Bool, _ tweak: (inout ResolvePolicy) -> Void = { _ in }) -> ResolvePolicy {
            var p = ResolvePolicy()
            p.enabled = true
            p.dryRun = dryRun
            p.killThresholdSeconds = 0
            p.cancelGraceSeconds = 0
            p.maxActionsPerCycle = 5
            p.maxTerminationsPerMinute = 5
            tweak(&p)
            return p
        }

        static func prepare(_ s: EngineScenario) throws {
            try s.admin.executeScript("""
                CREATE TABLE t (id int); CREATE TABLE u (id int);
                GRANT ALL ON t, u TO lv_app, lv_etl;
                GRANT lock_writer_role TO lv_monitor;
                GRANT CONNECT ON DATABASE \(s.database) TO lv_monitor;
                """)
        }

        static func decisions(_ s: EngineScenario) throws -> [(pid: Int32, decision: String, reason: String)] {
            try s.rows("""
                SELECT h.session_pid, r.decision, r.reason FROM lock_monitoring.resolve_decision_s r
                JOIN lock_monitoring.blocking_session_h h USING (blocking_session_hk) ORDER BY r.load_date, h.session_pid
                """).map { (try $0.decode("session_pid", as: Int32.self), try $0.decode("decision", as: String.self), try $0.decode("reason", as: String.self)) }
        }

        static func alive(_ s: EngineScenario, _ pid: Int32) throws -> Bool {
            try !s.rows("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid]).isEmpty
        }

        @Test func aDryRunRecordsTheDecisionAndTerminatesNothing() async throws {
            try Self.ensureRoles()
            try await EngineScenario.run(severity: Self.fast, resolve: Self.policy(dryRun: true), monitorUser: "lv_monitor") { s in
                try Self.prepare(s)
                let holder = try await s.session("lv-holder", user: "lv_app"), victim = try await s.session("lv-victim", user: "lv_app")
                try await holder.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                let waiting = victim.start("SELECT * FROM t")
                try await s.waitForWaiters(1)
                let outcome = try await s.cycle()
                #expect(outcome.decisions.map(\.decisionName) == ["would_terminate"])
                #expect(try Self.alive(s, holder.pid))
                #expect(try Self.decisions(s).map(\.decision) == ["would_terminate"])
                let last = try s.rows("SELECT last_decision FROM lock_monitoring.blocking_sessions_dashboard")[0].decode("last_decision", as: String.self)
                #expect(last == "would_terminate")
                try await holder.run("ROLLBACK")
                _ = await waiting.value
            }
        }

        @Test func anIdleInTransactionBlockerIsTerminatedAndItsVictimProceeds() async throws {
            try Self.ensureRoles()
            try await EngineScenario.run(severity: Self.fast, resolve: Self.policy(dryRun: false), monitorUser: "lv_monitor") { s in
                try Self.prepare(s)
                let holder = try await s.session("lv-holder", user: "lv_app"), victim = try await s.session("lv-victim", user: "lv_app")
                try await holder.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                let waiting = victim.start("SELECT * FROM t")
                try await s.waitForWaiters(1)
                let outcome = try await s.cycle()
                #expect(outcome.decisions.map(\.decisionName) == ["terminated"])
                if case .failure(let e) = await waiting.value { Issue.record("the victim should proceed: \(e)") }
                #expect(try !Self.alive(s, holder.pid))
                #expect(try Self.decisions(s).map(\.decision) == ["terminated"])
            }
        }

        @Test func anActiveBlockerIsCancelledFirstThenTerminatedIfItStillBlocks() async throws {
            try Self.ensureRoles()
            try await EngineScenario.run(severity: Self.fast, resolve: Self.policy(dryRun: false), monitorUser: "lv_monitor") { s in
                try Self.prepare(s)
                let holder = try await s.session("lv-holder", user: "lv_app"), victim = try await s.session("lv-victim", user: "lv_app")
                // Active, holding the lock, and shrugging off cancels (a cancel usually aborts the
                // transaction and frees the lock; this one catches it and carries on).
                let busy = holder.start("""
                    DO $$ BEGIN
                      LOCK TABLE t IN ACCESS EXCLUSIVE MODE;
                      LOOP BEGIN PERFORM pg_sleep(60); EXCEPTION WHEN query_canceled THEN NULL; END; END LOOP;
                    END $$
                    """)
                try await waitUntil("holder has the lock") {
                    try !s.rows("SELECT 1 FROM pg_locks WHERE pid = $1 AND mode = 'AccessExclusiveLock' AND granted", [holder.pid]).isEmpty
                }
                let waiting = victim.start("SELECT * FROM t")
                try await s.waitForWaiters(1)
                let first = try await s.cycle()
                #expect(first.decisions.map(\.decisionName) == ["cancelled"])
                #expect(try Self.alive(s, holder.pid))
                try await waitUntil("the cancel was absorbed and it still blocks") {
                    try !s.rows("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'", [victim.pid]).isEmpty
                }
                let second = try await s.cycle()
                #expect(second.decisions.map(\.decisionName) == ["terminated"])
                if case .failure(let e) = await waiting.value { Issue.record("the victim should proceed: \(e)") }
                _ = await busy.value
                #expect(try Self.decisions(s).map(\.decision) == ["cancelled", "terminated"])
            }
        }

        @Test func superusersExcludedApplicationsAndRolesAreSparedWithTheReason() async throws {
            try Self.ensureRoles()
            let policy = Self.policy(dryRun: false) { p in
                p.excludeApplications = ["/^lv-batch/"]
                p.excludeRoles = ["lv_etl"]
            }
            try await EngineScenario.run(severity: Self.fast, resolve: policy, monitorUser: "lv_monitor") { s in
                try Self.prepare(s)
                try s.admin.execute("CREATE TABLE v (id int)")
                try s.admin.execute("GRANT ALL ON v TO lv_app, lv_etl")
                let superuser = try await s.session("lv-super")                       // postgres: a superuser
                let batch = try await s.session("lv-batch-7", user: "lv_app")
                let etl = try await s.session("lv-etl", user: "lv_etl")
                try await superuser.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                try await batch.run("BEGIN", "LOCK TABLE u IN ACCESS EXCLUSIVE MODE")
                try await etl.run("BEGIN", "LOCK TABLE v IN ACCESS EXCLUSIVE MODE")
                var waits: [Task<Result<Void, PostgresError>, Never>] = []
                for table in ["t", "u", "v"] {
                    let w = try await s.session("lv-w-\(table)", user: "lv_app")
                    waits.append(w.start("SELECT * FROM \(table)"))
                }
                try await s.waitForWaiters(3)
                let outcome = try await s.cycle()
                let byPid = Dictionary(uniqueKeysWithValues: outcome.decisions.map { ($0.decision.assessment.pid!, $0) })
                #expect(byPid[superuser.pid]?.decisionName == "skipped")
                #expect(byPid[superuser.pid]?.decision.reason.contains("superuser") == true)
                #expect(byPid[batch.pid]?.decision.reason.contains("excluded application") == true)
                #expect(byPid[etl.pid]?.decision.reason.contains("excluded role") == true)
                for pid in [superuser.pid, batch.pid, etl.pid] { #expect(try Self.alive(s, pid)) }
                #expect(try Self.decisions(s).filter { $0.decision == "skipped" }.count == 3)
                try await superuser.run("ROLLBACK"); try await batch.run("ROLLBACK"); try await etl.run("ROLLBACK")
                for w in waits { _ = await w.value }
            }
        }

        @Test func theRateLimitCapsTerminationsAcrossCycles() async throws {
            try Self.ensureRoles()
            let policy = Self.policy(dryRun: false) { p in p.maxTerminationsPerMinute = 1 }
            try await EngineScenario.run(severity: Self.fast, resolve: policy, monitorUser: "lv_monitor") { s in
                try Self.prepare(s)
                let a = try await s.session("lv-a", user: "lv_app"), b = try await s.session("lv-b", user: "lv_app")
                try await a.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                try await b.run("BEGIN", "LOCK TABLE u IN ACCESS EXCLUSIVE MODE")
                let wa = try await s.session("lv-wa", user: "lv_app"), wb = try await s.session("lv-wb", user: "lv_app")
                let ta = wa.start("SELECT * FROM t"), tb = wb.start("SELECT * FROM u")
                try await s.waitForWaiters(2)
                let first = try await s.cycle()
                #expect(first.decisions.filter { $0.decisionName == "terminated" }.count == 1)
                #expect(first.decisions.contains { $0.decision.reason.contains("rate limit") })
                let second = try await s.cycle()
                #expect(second.decisions.map(\.decisionName) == ["skipped"], "still within the minute")
                #expect(second.decisions.first?.decision.reason.contains("rate limit") == true)
                let survivor = try Self.alive(s, a.pid) ? a : b
                try await survivor.run("ROLLBACK")
                _ = await ta.value; _ = await tb.value
            }
        }

        @Test func asTheLeastPrivilegedRoleAStaleIdentityIsRefusedAndItsOwnSessionsAreProtected() async throws {
            try Self.ensureRoles()
            try await EngineScenario.run(severity: Self.fast, monitorUser: "lv_monitor") { s in
                try Self.prepare(s)
                let holder = try await s.session("lv-holder", user: "lv_app"), victim = try await s.session("lv-victim", user: "lv_app")
                try await holder.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                let waiting = victim.start("SELECT * FROM t")
                try await s.waitForWaiters(1)
                let monitor = try LiveDatabase.connect(database: s.database, user: "lv_monitor")
                defer { monitor.close() }
                #expect(try monitor.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")[0].decode("rolsuper", as: Bool.self) == false)
                let start = try s.rows("SELECT backend_start FROM pg_stat_activity WHERE pid = $1", [holder.pid])[0].decode("backend_start", as: Date.self)
                #expect(SessionSignaller.signal(.terminate, pid: holder.pid, backendStart: start.addingTimeInterval(-1), on: monitor) == .identityChanged)
                #expect(SessionSignaller.signal(.terminate, pid: holder.pid, backendStart: start, scope: SignalScope(ownPids: [holder.pid]), on: monitor) == .protected)
                #expect(try Self.alive(s, holder.pid))
                #expect(SessionSignaller.signal(.terminate, pid: holder.pid, backendStart: start, on: monitor) == .done)
                if case .failure(let e) = await waiting.value { Issue.record("the victim should proceed: \(e)") }
            }
        }

        @Test func aPreparedTransactionGetsARecommendationOnly() async throws {
            try Self.ensureRoles()
            try await EngineScenario.run(severity: Self.fast, resolve: Self.policy(dryRun: false), monitorUser: "lv_monitor") { s in
                try Self.prepare(s)
                let a = try await s.session("lv-a", user: "lv_app"), b = try await s.session("lv-b", user: "lv_app")
                let gid = "lv-resolve-\(UInt32.random(in: 0...UInt32.max))"
                try await a.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "PREPARE TRANSACTION '\(gid)'")
                let waiting = b.start("SELECT * FROM t")
                try await s.waitForWaiters(1)
                let outcome = try await s.cycle()
                #expect(outcome.decisions.map(\.decisionName) == ["recommend_only"])
                #expect(outcome.decisions.first?.decision.reason.contains("ROLLBACK PREPARED") == true)
                #expect(try s.rows("SELECT 1 FROM pg_prepared_xacts WHERE gid = $1", [gid]).count == 1)
                try s.admin.execute("ROLLBACK PREPARED '\(gid)'")
                _ = await waiting.value
            }
        }
    }
}
