import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient
import Testing
import TestSupport

extension LiveDatabaseSuite {
    /// One kill rule: for every blocker, what `blocking_sessions_dashboard` says
    /// (auto_kill_eligible, auto_kill_reason) is what the dry run decided — in each of the
    /// situations where the old dashboard copy of the rule disagreed with the resolver.
    ///
    /// Each scenario runs the real `lockvault resolve --json` (a dry run, as the least
    /// privileged role) against real sessions; its cycle is what the vault records. Then every
    /// blocker on the dashboard is compared with the dry run's decision about it, and the
    /// scenario's own blocker is checked for the reason the scenario is about.
    @Suite struct KillRuleLiveTests {
        /// One blocker's row of the dashboard, or one decision of the dry run.
        struct Verdict: Equatable, CustomStringConvertible {
            var eligible: Bool
            var reason: String
            var description: String { "\(eligible ? "eligible" : "ineligible"): \(reason)" }
        }

        /// Blocker (pid, or prepared gid) → what the dashboard says about it.
        static func dashboard(_ s: EngineScenario) throws -> [String: Verdict] {
            var rows: [String: Verdict] = [:]
            for row in try s.rows("SELECT session_pid, prepared_gid, auto_kill_eligible, auto_kill_reason FROM lock_monitoring.blocking_sessions_dashboard") {
                let key = try row.decode("session_pid", as: Int32?.self).map(String.init) ?? "gid:" + (try row.decode("prepared_gid", as: String.self))
                rows[key] = Verdict(eligible: try row.decode("auto_kill_eligible", as: Bool.self),
                                    reason: try row.decode("auto_kill_reason", as: String?.self) ?? "<NULL>")
            }
            return rows
        }

        /// Runs `lockvault resolve --json` (dry run) with `flags`; blocker → its decision.
        static func dryRun(_ s: EngineScenario, _ flags: [String]) async throws -> [String: Verdict] {
            let dsn = try LiveDatabase.conninfo(database: s.database, user: EngineScenario.leastPrivilegedRole)
            let r = try await ChildProcess.lockvault(["resolve", "--json", "--dsn", dsn] + flags)
            #expect(r.status == 0 || r.status == 2, "\(r)")
            #expect(r.stderr.isEmpty, "\(r)")
            let decisions = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], "\(r)")
            var verdicts: [String: Verdict] = [:]
            for d in decisions {
                let key = (d["pid"] as? Int).map(String.init) ?? "gid:" + (d["prepared_gid"] as? String ?? "?")
                verdicts[key] = Verdict(eligible: try #require(d["auto_kill_eligible"] as? Bool), reason: try #require(d["reason"] as? String))
                #expect((d["auto_kill_eligible"] as? Bool) == ((d["decision"] as? String)?.hasPrefix("would_") == true), "\(d)")
            }
            return verdicts
        }

        /// Every blocker on the dashboard carries the dry run's decision; one the dry run did not
        /// list was not a candidate (below --min-severity) and says so. Returns the dashboard.
        @discardableResult
        static func expectDashboardEqualsDryRun(_ s: EngineScenario, _ flags: [String], minSeverity: String = "LOW",
                                                sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String: Verdict] {
            let dry = try await dryRun(s, flags + ["--min-severity", minSeverity])
            let shown = try dashboard(s)
            #expect(!shown.isEmpty, "the dry run's cycle recorded its blockers", sourceLocation: sourceLocation)
            for (blocker, decision) in dry {
                #expect(shown[blocker] == decision, "blocker \(blocker): dashboard \(shown[blocker].map(\.description) ?? "missing"), dry run \(decision)",
                        sourceLocation: sourceLocation)
            }
            for (blocker, row) in shown where dry[blocker] == nil {
                #expect(row == Verdict(eligible: false, reason: "below resolve.min_severity (\(minSeverity))"),
                        "blocker \(blocker) not in the dry run must be below its minimum: \(row)", sourceLocation: sourceLocation)
            }
            return shown
        }

        /// Ends every session of the scenario's database but the admin's (and prepared
        /// transactions), so the blocked statements return.
        static func release(_ s: EngineScenario, _ waits: [Task<Result<Void, PostgresError>, Never>]) async throws {
            for row in try s.rows("SELECT gid FROM pg_prepared_xacts WHERE database = current_database()") {
                try s.admin.execute("ROLLBACK PREPARED '\(try row.decode("gid", as: String.self))'")
            }
            _ = try s.rows("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
            for w in waits { _ = await w.value }
        }

        /// A session of `user`/`app` idle in a transaction holding ACCESS EXCLUSIVE on `table`,
        /// with one waiter.
        static func idleBlocker(_ s: EngineScenario, table: String = "t", app: String = "lv-holder", user: String? = "lv_app") async throws
            -> (BackgroundSession, Task<Result<Void, PostgresError>, Never>) {
            let holder = try await s.session(app, user: user)
            try await holder.run("BEGIN", "LOCK TABLE \(table) IN ACCESS EXCLUSIVE MODE")
            let waiter = try await s.session("lv-waiter-\(table)", user: "lv_app")
            return (holder, waiter.start("SELECT * FROM \(table)"))
        }

        static func scenario(_ body: (EngineScenario) async throws -> Void) async throws {
            try ResolveLiveTests.ensureRoles()
            try await EngineScenario.run { s in
                try ResolveLiveTests.prepare(s)
                try await body(s)
            }
        }

        @Test func rootAndNonRootBlockers() async throws {
            try await Self.scenario { s in
                let (root, w1) = try await Self.idleBlocker(s)
                let middle = try await s.session("lv-middle", user: "lv_app")
                try await middle.run("BEGIN", "LOCK TABLE u IN ACCESS EXCLUSIVE MODE")
                let w2 = middle.start("LOCK TABLE t IN ACCESS SHARE MODE")       // waits for root, holds u
                let w3 = try await s.session("lv-waiter-u", user: "lv_app").start("SELECT * FROM u")
                try await s.waitForWaiters(3)
                let shown = try await Self.expectDashboardEqualsDryRun(s, ["--threshold", "0", "--max", "5"])
                #expect(shown["\(root.pid)"] == Verdict(eligible: true, reason: "idle in transaction blocker holding locks"))
                #expect(shown["\(middle.pid)"] == Verdict(eligible: false, reason: KillIneligibility.notRoot(roots: [.session(root.pid)]).description))
                #expect(shown["\(middle.pid)"]?.reason == "not the root: it waits itself, behind pid \(root.pid), the root; ending pid \(root.pid) ends the chain")
                try await Self.release(s, [w1, w2, w3])
            }
        }

        @Test func anExcludedRoleApplicationOrDatabase() async throws {
            try await Self.scenario { s in
                let (etl, w1) = try await Self.idleBlocker(s, table: "t", app: "lv-etl", user: "lv_etl")
                let (batch, w2) = try await Self.idleBlocker(s, table: "u", app: "lv-batch-7")
                try await s.waitForWaiters(2)
                var shown = try await Self.expectDashboardEqualsDryRun(s, ["--threshold", "0", "--max", "5", "--exclude-role", "lv_etl",
                                                                           "--exclude-application", "/^lv-batch/"])
                #expect(shown["\(etl.pid)"] == Verdict(eligible: false, reason: "excluded role (lv_etl)"))
                #expect(shown["\(batch.pid)"] == Verdict(eligible: false, reason: "excluded application (/^lv-batch/)"))
                shown = try await Self.expectDashboardEqualsDryRun(s, ["--threshold", "0", "--max", "5", "--exclude-database", s.database])
                #expect(shown["\(etl.pid)"] == Verdict(eligible: false, reason: "excluded database (\(s.database))"))
                #expect(shown["\(batch.pid)"] == Verdict(eligible: false, reason: "excluded database (\(s.database))"))
                try await Self.release(s, [w1, w2])
            }
        }

        @Test func aClientAddressExclusionDoesNotSpareASocketSession() async throws {
            // The test cluster listens on its Unix socket only: client_addr is NULL, and no
            // address pattern matches no address (unit tests cover a matching address).
            try await Self.scenario { s in
                let (holder, w) = try await Self.idleBlocker(s)
                try await s.waitForWaiters(1)
                let shown = try await Self.expectDashboardEqualsDryRun(s, ["--threshold", "0", "--exclude-client-address", "/.*/"])
                #expect(shown["\(holder.pid)"]?.eligible == true)
                try await Self.release(s, [w])
            }
        }

        @Test func aSuperuser() async throws {
            try await Self.scenario { s in
                let (superuser, w) = try await Self.idleBlocker(s, app: "lv-super", user: nil)   // postgres
                try await s.waitForWaiters(1)
                var shown = try await Self.expectDashboardEqualsDryRun(s, ["--threshold", "0"])
                #expect(shown["\(superuser.pid)"] == Verdict(eligible: false, reason: ProtectedSession.superuser.description))
                shown = try await Self.expectDashboardEqualsDryRun(s, ["--threshold", "0", "--allow-superuser"])
                #expect(shown["\(superuser.pid)"]?.eligible == true, "the satellite follows the new verdict")
                try await Self.release(s, [w])
            }
        }

        @Test func aPreparedTransaction() async throws {
            try await Self.scenario { s in
                let a = try await s.session("lv-a", user: "lv_app")
                let gid = "lv-kill-\(UInt32.random(in: 0...UInt32.max))"
                try await a.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "PREPARE TRANSACTION '\(gid)'")
                let w = try await s.session("lv-waiter", user: "lv_app").start("SELECT * FROM t")
                try await s.waitForWaiters(1)
                let shown = try await Self.expectDashboardEqualsDryRun(s, ["--threshold", "0"])
                #expect(shown["gid:\(gid)"] == Verdict(eligible: false, reason: KillIneligibility.preparedTransaction(gid: gid).description))
                try await Self.release(s, [w])
            }
        }

        @Test func belowMinSeverityAndBelowTheThreshold() async throws {
            try await Self.scenario { s in
                let (holder, w) = try await Self.idleBlocker(s)
                try await s.waitForWaiters(1)
                // A fresh blocker holding ACCESS EXCLUSIVE is MEDIUM under the default severity policy.
                var shown = try await Self.expectDashboardEqualsDryRun(s, ["--threshold", "0"], minSeverity: "HIGH")
                #expect(shown["\(holder.pid)"] == Verdict(eligible: false, reason: "below resolve.min_severity (HIGH)"))
                shown = try await Self.expectDashboardEqualsDryRun(s, ["--threshold", "3600"])
                #expect(shown["\(holder.pid)"] == Verdict(eligible: false, reason: "below kill_threshold_seconds (3600 s)"))
                try await Self.release(s, [w])
            }
        }

        @Test func thePerCycleCap() async throws {
            try await Self.scenario { s in
                let (first, w1) = try await Self.idleBlocker(s, table: "t")
                let (second, w2) = try await Self.idleBlocker(s, table: "u")
                try await s.waitForWaiters(2)
                let shown = try await Self.expectDashboardEqualsDryRun(s, ["--threshold", "0", "--max", "1"])
                #expect([first.pid, second.pid].compactMap { shown["\($0)"] }.sorted { $0.reason < $1.reason }
                        == [Verdict(eligible: true, reason: "idle in transaction blocker holding locks"),
                            Verdict(eligible: false, reason: "per-cycle cap (max_actions_per_cycle 1) reached")])
                try await Self.release(s, [w1, w2])
            }
        }

        /// The rate limit spans cycles and applies only when acting, so this one runs the
        /// daemon's resolver (the Monitor, executing) and compares the dashboard with its
        /// decisions, cycle by cycle.
        @Test func theRateLimitAcrossCycles() async throws {
            try ResolveLiveTests.ensureRoles()
            let policy = ResolveLiveTests.policy(dryRun: false) { p in p.maxTerminationsPerMinute = 1 }
            try await EngineScenario.run(severity: ResolveLiveTests.fast, resolve: policy) { s in
                try ResolveLiveTests.prepare(s)
                let (a, w1) = try await Self.idleBlocker(s, table: "t")
                let (b, w2) = try await Self.idleBlocker(s, table: "u")
                try await s.waitForWaiters(2)
                for cycle in 1...2 {
                    let outcome = try await s.cycle()
                    let shown = try Self.dashboard(s)
                    // The vault records what this cycle saw (the one terminated in it included).
                    #expect(Set(shown.keys) == Set(outcome.rulings.compactMap { $0.assessment.pid.map(String.init) }), "cycle \(cycle)")
                    for d in outcome.rulings {
                        #expect(shown["\(d.assessment.pid!)"] == Verdict(eligible: d.eligibility.isEligible, reason: d.reason), "cycle \(cycle)")
                    }
                    let limited = outcome.rulings.filter { $0.eligibility == .ineligible(.rateLimited(1)) }
                    #expect(limited.count == 1, "cycle \(cycle): one is terminated in the first cycle, the other waits for the minute: \(outcome.rulings.map(\.reason))")
                    #expect(outcome.rulings.count == (cycle == 1 ? 2 : 1))
                }
                #expect(try Self.alive(s, a.pid) != Self.alive(s, b.pid), "exactly one was terminated")
                try await Self.release(s, [w1, w2])
            }
        }

        static func alive(_ s: EngineScenario, _ pid: Int32) throws -> Bool {
            try !s.rows("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid]).isEmpty
        }
    }
}
