import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient
import Testing

extension LiveDatabaseSuite {
    /// Short waits are counted, not resolved: under `sampling.min_wait_seconds` (the daemon's
    /// default is 1 s) a wait younger than that leaves no lock row and no blocker, only a count,
    /// while a longer one is recorded with its blocker and its real `waitstart`.
    @Suite struct ShortWaitsLiveTests {
        static func scenario(minWait: Double, _ body: (EngineScenario) async throws -> Void) async throws {
            try await EngineScenario.run(configure: { $0.sampling.snapshot.minWaitSeconds = minWait }) { s in
                try s.admin.executeScript("CREATE TABLE t (id int); CREATE TABLE t2 (id int)")
                // A running daemon's cycle: the first one knows no wait's age, and resolves every wait.
                try await s.cycle()
                try await body(s)
            }
        }

        /// Until `session`'s lock wait is `seconds` old (by the server's clock and its waitstart).
        static func waitAged(_ s: EngineScenario, _ session: BackgroundSession, seconds: Double) async throws {
            try await waitUntil("the wait is \(seconds) s old", every: .milliseconds(10)) {
                try !s.rows("SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted AND waitstart <= now() - make_interval(secs => $2)",
                            [session.pid, seconds]).isEmpty
            }
        }

        static func count(_ s: EngineScenario, _ from: String) throws -> Int {
            try s.rows("SELECT count(*) AS n FROM \(from)")[0].decode("n", as: Int.self)
        }

        /// A wait of 0.2 s: `b` waits for `a`'s lock while `cycles` cycles run, and once it is 0.2 s
        /// old `a` lets go.
        static func briefWait(_ s: EngineScenario, _ a: BackgroundSession, _ b: BackgroundSession, cycles: Int) async throws -> [CycleOutcome] {
            try await a.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            let waits = b.start("SELECT * FROM t")
            try await s.waitForWaiters(1)
            var outcomes: [CycleOutcome] = []
            for _ in 0..<cycles { outcomes.append(try await s.cycle()) }
            try await Self.waitAged(s, b, seconds: 0.2)
            try await a.run("ROLLBACK")
            if case .failure(let e) = await waits.value { Issue.record("the waiter should proceed: \(e)") }
            return outcomes
        }

        @Test func fiveShortWaitsLeaveNoLockRowAndTheSummaryCountsThem() async throws {
            try await Self.scenario(minWait: 1) { s in
                let a = try await s.session("lv-holder"), b = try await s.session("lv-waiter")
                for _ in 0..<5 {
                    for outcome in try await Self.briefWait(s, a, b, cycles: 2) {
                        let snapshot = try #require(outcome.snapshot)
                        #expect(snapshot.lockWaiters == 1 && snapshot.shortWaits == 1, "counted as a short wait")
                        #expect(outcome.assessments.isEmpty, "not resolved: no blocker")
                        #expect(!snapshot.locks.contains { $0.pid == b.pid }, "its lock was not read")
                    }
                }
                #expect(try Self.count(s, "lock_monitoring.lock_activity_s") == 0, "no lock row")
                #expect(try Self.count(s, "lock_monitoring.blocking_session_s") == 0, "no blocker row")
                #expect(try Self.count(s, "lock_monitoring.monitor_cycle_s") == 1, "short waits coming and going write no summary row either")
                #expect(try s.rows("SELECT short_waits FROM lock_monitoring.monitor_cycle_s")[0].decode("short_waits", as: Int.self) == 0,
                        "the row is the first cycle's, before the waits; the cycle summaries above counted them")
            }
        }

        @Test func aThreeSecondWaitIsRecordedWithItsBlockerAndItsRealWaitStart() async throws {
            try await Self.scenario(minWait: 1) { s in
                let a = try await s.session("lv-holder"), b = try await s.session("lv-waiter")
                try await a.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                let waits = b.start("SELECT * FROM t")
                try await s.waitForWaiters(1)
                let first = try await s.cycle()
                #expect(first.assessments.isEmpty && first.snapshot?.shortWaits == 1, "first seen: too young to resolve")
                var resolved: CycleOutcome?
                try await waitUntil("the wait is resolved once it is a second old", timeout: .seconds(10), every: .milliseconds(250)) {
                    let outcome = try await s.cycle()
                    if !outcome.assessments.isEmpty { resolved = outcome }
                    return resolved != nil
                }
                #expect(resolved?.assessments.map(\.pid) == [a.pid])
                #expect(resolved?.snapshot?.shortWaits == 0)
                // It goes on to last 3 s, sampled all the while; its rows stay the same.
                try await waitUntil("the wait is 3 s old, sampled every 250 ms", timeout: .seconds(10), every: .milliseconds(250)) {
                    #expect(try await s.cycle().assessments.map(\.pid) == [a.pid], "once resolved, it stays resolved")
                    return try !s.rows("SELECT 1 FROM pg_locks WHERE pid = $1 AND NOT granted AND waitstart <= now() - interval '3 s'", [b.pid]).isEmpty
                }
                let real = try s.rows("SELECT waitstart FROM pg_locks WHERE pid = $1 AND NOT granted", [b.pid])[0].decode("waitstart", as: Date.self)
                let row = try #require(try s.rows("SELECT blocking_pid, block_kind FROM lock_monitoring.lock_activity_dashboard WHERE session_pid = $1 AND NOT granted", [b.pid]).first)
                #expect(try row.decode("blocking_pid", as: Int32.self) == a.pid && row.decode("block_kind", as: String.self) == "hard")
                let recorded = try s.rows("SELECT wait_start FROM lock_monitoring.lock_activity_s WHERE session_pid = $1 AND NOT lock_granted", [b.pid])[0]
                    .decode("wait_start", as: Date.self)
                #expect(abs(recorded.timeIntervalSince(real)) < 0.000_01, "the real waitstart, not when lockvault resolved it: \(recorded) vs \(real)")
                #expect(try s.rows("SELECT session_pid FROM lock_monitoring.blocking_sessions_dashboard")[0].decode("session_pid", as: Int32.self) == a.pid)
                try await a.run("ROLLBACK")
                _ = await waits.value
            }
        }

        @Test func minWaitZeroRecordsEveryWait() async throws {
            try await Self.scenario(minWait: 0) { s in
                let a = try await s.session("lv-holder"), b = try await s.session("lv-waiter")
                let outcomes = try await Self.briefWait(s, a, b, cycles: 1)
                #expect(outcomes[0].assessments.map(\.pid) == [a.pid] && outcomes[0].snapshot?.shortWaits == 0)
                #expect(try Self.count(s, "lock_monitoring.lock_activity_s WHERE session_pid = \(b.pid) AND NOT lock_granted") == 1)
                #expect(try Self.count(s, "lock_monitoring.blocking_session_s") == 1)
            }
        }

        /// Cycles until `what` holds (the waits involved must first be a second old).
        static func cycleUntil(_ s: EngineScenario, _ what: String, _ done: @escaping (CycleOutcome) throws -> Bool) async throws {
            try await waitUntil(what, timeout: .seconds(15), every: .milliseconds(200)) { try done(try await s.cycle()) }
        }

        @Test func aChainAPreparedTransactionAndADeadlockAreRecordedAsBefore() async throws {
            try await Self.scenario(minWait: 1) { s in
                let a = try await s.session("lv-a"), b = try await s.session("lv-b"), c = try await s.session("lv-c")
                try await a.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
                try await b.run("BEGIN", "LOCK TABLE t2 IN ACCESS EXCLUSIVE MODE")
                let bWaits = b.start("LOCK TABLE t IN ACCESS SHARE MODE")
                try await s.waitForWaiters(1)
                let cWaits = c.start("SELECT * FROM t2")
                try await s.waitForWaiters(2)
                try await Self.cycleUntil(s, "the chain a ← b ← c") { $0.assessments.map(\.pid) == [a.pid, b.pid] }
                let rows = try s.rows("SELECT session_pid, blocked_sessions_count, is_root_blocker FROM lock_monitoring.blocking_sessions_dashboard")
                #expect(try rows.map { try $0.decode("session_pid", as: Int32.self) } == [a.pid, b.pid])
                #expect(try rows.map { try $0.decode("blocked_sessions_count", as: Int.self) } == [2, 1])
                #expect(try rows.map { try $0.decode("is_root_blocker", as: Bool.self) } == [true, false])
                try await a.run("ROLLBACK")
                _ = await bWaits.value
                try await b.run("ROLLBACK")
                _ = await cWaits.value

                let gid = "lv-short-\(UInt32.random(in: 0...UInt32.max))"
                try await a.run("BEGIN", "LOCK TABLE t IN ACCESS EXCLUSIVE MODE", "PREPARE TRANSACTION '\(gid)'")
                let behindPrepared = b.start("SELECT * FROM t")
                try await s.waitForWaiters(1)
                try await Self.cycleUntil(s, "the prepared transaction as the blocker") { $0.assessments.first?.participant == .prepared(gid) }
                let wait = try #require(try s.rows("SELECT blocking_pid FROM lock_monitoring.lock_activity_dashboard WHERE NOT granted AND session_pid = $1", [b.pid]).first)
                #expect(try wait.decode("blocking_pid", as: Int32.self) == 0)
                try s.admin.execute("ROLLBACK PREPARED '\(gid)'")
                _ = await behindPrepared.value

                let before = try RealDeadlock.counter(s.database)
                _ = try await RealDeadlock.provoke(database: s.database)
                try await RealDeadlock.waitForCounter(s.database, above: before)
                try await Self.cycleUntil(s, "the deadlock counted") { !$0.deadlocks.isEmpty }
                #expect(try Self.count(s, "lock_monitoring.deadlock_events_dashboard") == 1)
            }
        }
    }
}
