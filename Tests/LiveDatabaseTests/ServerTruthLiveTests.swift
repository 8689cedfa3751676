import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient
import Testing
import TestSupport

extension LiveDatabaseSuite {
    /// Where pg_locks cannot tell the queue's order, and where parallel workers hold and wait,
    /// lockvault says what the server says: every edge checked against `pg_blocking_pids()`, and
    /// every surface (tree, JSON, dashboards, alerts, resolver) names leaders only and records no
    /// deadlock the server never had.
    @Suite struct ServerTruthLiveTests {
        typealias Queue = LockQueueLiveTests

        static func scenario(_ body: (EngineScenario) async throws -> Void) async throws {
            try ResolveLiveTests.ensureRoles()
            try await EngineScenario.run { s in
                try ResolveLiveTests.prepare(s)
                try s.admin.executeScript("""
                    CREATE TABLE st (id int); INSERT INTO st VALUES (1); ALTER TABLE st OWNER TO lv_app;
                    CREATE TABLE su (id int); INSERT INTO su VALUES (1); ALTER TABLE su OWNER TO lv_app;
                    """)
                try await body(s)
            }
        }

        /// lockvault's edges of this cycle (waiter → blockers, by pid) equal `pg_blocking_pids()`
        /// of every waiter, read right after; and no deadlock is recorded or alerted.
        static func expectServerTruth(_ s: EngineScenario, waiters: [Int32], sourceLocation: SourceLocation = #_sourceLocation) async throws -> CycleOutcome {
            let outcome = try await s.cycle()
            let snapshot = try #require(outcome.snapshot, sourceLocation: sourceLocation)
            let graph = WaitGraph(snapshot)
            for w in waiters {
                let server = try s.rows("SELECT coalesce(array_agg(b ORDER BY b), '{}') AS b FROM unnest(pg_blocking_pids($1)) b", [w])[0].decode("b", as: [Int32].self)
                // A worker's pg_blocking_pids() are its group's: lockvault's are its leader's.
                let session = snapshot.backend(w)?.sessionPid ?? w
                let ours = graph.blockers(of: .session(session)).compactMap(\.pid).sorted()
                #expect(ours == server, "pid \(w): lockvault \(ours), pg_blocking_pids \(server)", sourceLocation: sourceLocation)
            }
            #expect(graph.cycles.isEmpty, "\(graph.cycles)", sourceLocation: sourceLocation)
            #expect(outcome.deadlocks.isEmpty, "\(outcome.deadlocks)", sourceLocation: sourceLocation)
            var alerts = AlertTracker(cluster: "test")
            let sent = alerts.observe(snapshot, assessments: outcome.assessments, deadlocks: outcome.deadlocks)
            #expect(!sent.contains { $0.kind == .deadlock }, "\(sent)", sourceLocation: sourceLocation)
            #expect(try s.rows("SELECT count(*) AS n FROM lock_monitoring.deadlock_events_dashboard")[0].decode("n", as: Int.self) == 0,
                    "no deadlock row", sourceLocation: sourceLocation)
            return outcome
        }

        /// S1 updates; S2 reads; S3 asks ACCESS EXCLUSIVE and waits for both; S2 asks SHARE. The
        /// server puts S2 ahead of S3 (ProcSleep): S2 waits for S1 alone. Ordered by waitstart,
        /// S2 would wait for S3 too, and the graph would show a deadlock S2 ⇄ S3 that never was.
        @Test func aWaiterThatHoldsTheTableIsPutAheadAndNoDeadlockIsRecorded() async throws {
            try await Self.scenario { s in
                let s1 = try await s.session("lv-s1", user: "lv_app"), s2 = try await s.session("lv-s2", user: "lv_app")
                let s3 = try await s.session("lv-s3", user: "lv_app")
                try await s1.run("BEGIN", "UPDATE st SET id = id")
                try await s2.run("BEGIN", "SELECT * FROM st")
                try await s3.run("BEGIN")
                let exclusive = s3.start("LOCK TABLE st IN ACCESS EXCLUSIVE MODE")
                do { try await s.waitForWaiters(1) } catch {
                    Issue.record("S3 did not wait: \(await exclusive.value)")
                    throw error
                }
                let share = s2.start("LOCK TABLE st IN SHARE MODE")
                let seen = try await Queue.observe(s, waiters: 2)
                // Past deadlock_timeout: the server's detector has looked, and found nothing.
                let outcome = try await Self.expectServerTruth(s, waiters: [s2.pid, s3.pid])
                let graph = WaitGraph(try #require(outcome.snapshot))
                #expect(graph.blockers(of: .session(s2.pid)) == [.session(s1.pid)], "S2 is blocked by S1 alone")
                #expect(graph.kind(waiter: .session(s3.pid), blocker: .session(s2.pid)) == .hard, "S2 holds AccessShareLock, which S3's request conflicts with")

                #expect(seen.link(s2, s3) == nil && seen.link(s2, s1) == "hard", "\(seen.links)")
                #expect(seen.link(s3, s1) == "hard" && seen.link(s3, s2) == "hard", "\(seen.links)")
                #expect(seen.waiting[s2.pid]?.blockingPid == s1.pid, "\(seen.waiting)")
                #expect(!seen.tree.lowercased().contains("deadlock"), "\(seen.tree)")
                #expect(seen.json.values.allSatisfy { $0["inCycle"] as? Bool != true }, "\(seen.json)")
                #expect(seen.decisions[s1.pid]?.decision == "would_terminate", "\(seen.decisions)")
                #expect(seen.decisions[s2.pid]?.reason == KillIneligibility.notRoot(roots: [.session(s1.pid)]).description, "\(seen.decisions)")

                // S1 commits: all three finish, and still no deadlock.
                try await s1.run("COMMIT")
                if case .failure(let e) = await share.value { Issue.record("S2's SHARE lock failed: \(e)") }
                try await s2.run("COMMIT")
                if case .failure(let e) = await exclusive.value { Issue.record("S3's lock failed: \(e)") }
                try await s3.run("COMMIT")
                _ = try await Self.expectServerTruth(s, waiters: [])
            }
        }

        /// A soft deadlock the server resolves by reordering: C waits behind B's request on st,
        /// B waits for A, A waits for C. After deadlock_timeout the detector puts C ahead of B
        /// (its AccessShareLock is compatible with what A holds), C is granted and nobody is
        /// cancelled: no deadlock, whatever lockvault's graph showed in the meantime.
        @Test func aSoftDeadlockTheServerResolvesByReorderingIsNoDeadlock() async throws {
            try await Self.scenario { s in
                let a = try await s.session("lv-soft-a", user: "lv_app"), b = try await s.session("lv-soft-b", user: "lv_app")
                let c = try await s.session("lv-soft-c", user: "lv_app")
                try await a.run("BEGIN", "SELECT * FROM st")
                try await c.run("BEGIN", "LOCK TABLE su IN ACCESS EXCLUSIVE MODE")
                try await b.run("BEGIN")
                let bWait = b.start("LOCK TABLE st IN ACCESS EXCLUSIVE MODE")
                try await s.waitForWaiters(1)
                let aWait = a.start("SELECT * FROM su")
                try await s.waitForWaiters(2)
                let deadlocksBefore = try s.rows("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")[0].decode("deadlocks", as: Int64.self)
                let cRead = c.start("SELECT * FROM st")
                // Sample while the detector decides: no cycle seen meanwhile may become a deadlock.
                try await waitUntil("the server grants C by reordering", timeout: .seconds(20), every: .milliseconds(200)) {
                    let outcome = try await s.cycle()
                    #expect(outcome.deadlocks.isEmpty, "\(outcome.deadlocks)")
                    return try s.rows("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'idle in transaction'", [c.pid]).count == 1
                }
                if case .failure(let e) = await cRead.value { Issue.record("C was not granted: \(e)") }
                let seen = try await Queue.observe(s, waiters: 2)
                _ = try await Self.expectServerTruth(s, waiters: [a.pid, b.pid])
                #expect(seen.link(b, a) == "hard" && seen.link(a, c) == "hard", "\(seen.links)")
                #expect(seen.waiting[c.pid] == nil, "C was granted: it waits for no one now \(seen.waiting)")
                #expect(seen.decisions[c.pid]?.decision == "would_terminate", "\(seen.decisions)")
                #expect(seen.decisions[a.pid]?.reason == KillIneligibility.notRoot(roots: [.session(c.pid)]).description, "\(seen.decisions)")
                #expect(!seen.tree.lowercased().contains("deadlock"), "\(seen.tree)")
                let deadlocksAfter = try s.rows("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")[0].decode("deadlocks", as: Int64.self)
                #expect(deadlocksAfter == deadlocksBefore, "the server cancelled no one")
                try await KillRuleLiveTests.release(s, [aWait, bWait])
            }
        }

        /// A parallel query whose worker waits for a table another session holds, while its
        /// leader holds a lock a third session waits for: every edge, row and decision names the
        /// leader, as pg_blocking_pids() does.
        @Test func aParallelQueryIsItsLeader() async throws {
            try await Self.scenario { s in
                let version = try s.rows("SELECT current_setting('server_version_num')::int AS v")[0].decode("v", as: Int.self)
                let force = version >= 160000 ? "debug_parallel_query" : "force_parallel_mode"
                try s.admin.executeScript("""
                    CREATE FUNCTION read_su() RETURNS bigint LANGUAGE plpgsql PARALLEL SAFE AS $$ BEGIN RETURN (SELECT count(*) FROM su); END $$;
                    ALTER FUNCTION read_su() OWNER TO lv_app;
                    """)
                let h = try await s.session("lv-par-holder", user: "lv_app"), l = try await s.session("lv-par-leader", user: "lv_app")
                let w = try await s.session("lv-par-waiter", user: "lv_app")
                try await h.run("BEGIN", "LOCK TABLE su IN ACCESS EXCLUSIVE MODE")
                try await l.run("SET \(force) = on", "SET max_parallel_workers_per_gather = 2", "BEGIN", "LOCK TABLE st IN SHARE MODE")
                let query = l.start("SELECT read_su()")
                var workers: [Int32] = []
                try await waitUntil("a parallel worker of the leader waits for su", timeout: .seconds(20)) {
                    workers = try s.rows("SELECT pid FROM pg_stat_activity WHERE leader_pid = $1 AND pid <> $1 AND wait_event_type = 'Lock'", [l.pid])
                        .map { try $0.decode("pid", as: Int32.self) }
                    return !workers.isEmpty
                }
                let write = w.start("INSERT INTO st VALUES (2)")
                try await s.waitForWaiters(1)
                let seen = try await Queue.observe(s, waiters: 1)
                let outcome = try await Self.expectServerTruth(s, waiters: [l.pid, w.pid] + workers)
                let snapshot = try #require(outcome.snapshot)
                let graph = WaitGraph(snapshot)
                let edges: Set<[Int32]> = Set(graph.edges.map { [$0.waiter.pid ?? 0, $0.blocker.pid ?? 0] })
                let expected: Set<[Int32]> = [[l.pid, h.pid], [w.pid, l.pid]]
                #expect(edges == expected, "\(graph.edges)")
                var named: Set<Int32> = []
                named.formUnion(snapshot.backends.filter { !$0.blockedBy.isEmpty }.map(\.pid))
                named.formUnion(snapshot.backends.flatMap(\.blockedBy))
                named.formUnion(snapshot.locks.compactMap(\.pid))
                named.formUnion(outcome.assessments.compactMap(\.pid))
                named.formUnion(outcome.rulings.compactMap(\.assessment.pid))
                #expect(named.isDisjoint(with: workers), "no worker pid in a wait, a lock, a blocker or a decision: \(named) vs \(workers)")
                #expect(Set(seen.json.keys) == [h.pid, l.pid], "\(seen.json.keys)")
                #expect(Set(seen.dashboard.keys).isDisjoint(with: workers) && Set(seen.waiting.keys).isDisjoint(with: workers), "\(seen.dashboard) \(seen.waiting)")
                #expect(seen.waiting[l.pid]?.blockingPid == h.pid && seen.waiting[w.pid]?.blockingPid == l.pid, "\(seen.waiting)")
                #expect(seen.link(l, h) == "hard" && seen.link(w, l) == "hard", "\(seen.links)")
                #expect(workers.allSatisfy { !seen.tree.contains("pid \($0) ") }, "\(seen.tree)")
                #expect(Set(seen.decisions.keys).isDisjoint(with: workers), "\(seen.decisions)")
                #expect(seen.decisions[h.pid]?.decision == "would_terminate", "\(seen.decisions)")
                #expect(seen.decisions[l.pid]?.reason == KillIneligibility.notRoot(roots: [.session(h.pid)]).description, "\(seen.decisions)")
                try await KillRuleLiveTests.release(s, [query, write])
            }
        }
    }
}
