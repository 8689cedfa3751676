import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient
import Testing
import TestSupport

extension LiveDatabaseSuite {
    /// Lock queues told truly, against real sessions of an ordinary role, with lockvault as the
    /// least privileged one: a session queued ahead of others is "queued", not a holder, in the
    /// `blocking` tree and JSON, on both dashboards and in the resolver's answer; and the
    /// resolver's cancel of a queued request lets the queue through without touching the holder.
    @Suite struct LockQueueLiveTests {
        /// What every surface said about one situation.
        struct Seen {
            var tree: String
            /// `blocking --json`'s blockers by pid.
            var json: [Int32: [String: Any]]
            /// blocking_sessions_dashboard by pid: blocks_as, held_lock_mode, queued_for_mode.
            var dashboard: [Int32: [String: String?]]
            /// lock_activity_dashboard's waiting rows by pid: blocking_pid and block_kind.
            var waiting: [Int32: (blockingPid: Int32?, kind: String?)]
            /// lock_blocking_l: (waiter, blocker) → kind.
            var links: [String: String]
            /// `resolve --json` decisions by pid.
            var decisions: [Int32: (decision: String, reason: String)]
            var resolveStatus: Int32

            func link(_ waiter: BackgroundSession, _ blocker: BackgroundSession) -> String? { links["\(waiter.pid)>\(blocker.pid)"] }
        }

        static let resolveFlags = ["--threshold", "1", "--min-severity", "LOW", "--cancel-queued-after", "1"]

        /// Waits until `waiters` sessions wait and every wait is at least 1.2 s old (the flags'
        /// thresholds are 1 s), then asks every surface. A wait's age is its `waitstart`, or its
        /// statement's when that is NULL: PostgreSQL 14 leaves it NULL for a waiter whose queue
        /// the deadlock detector rearranged.
        static func observe(_ s: EngineScenario, waiters: Int, execute: Bool = false) async throws -> Seen {
            try await s.waitForWaiters(waiters)
            try await waitUntil("every wait is older than the 1 s thresholds") {
                try s.rows("SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.datname = current_database() AND NOT l.granted AND coalesce(l.waitstart, a.query_start) < now() - interval '1200 ms'")[0]
                    .decode("n", as: Int64.self) >= waiters
            }
            let dsn = try LiveDatabase.conninfo(database: s.database, user: EngineScenario.leastPrivilegedRole)
            let tree = try await ChildProcess.lockvault(["blocking", "--dsn", dsn])
            #expect(tree.status == 0, "\(tree)")
            let json = try await ChildProcess.lockvault(["blocking", "--json", "--dsn", dsn])
            #expect(json.status == 0, "\(json)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            var blockers: [Int32: [String: Any]] = [:]
            for b in report["blockers"] as? [[String: Any]] ?? [] {
                if case .some(let p) = (b["participant"] as? [String: Any])?["session"] as? [String: Any], let pid = p["_0"] as? Int { blockers[Int32(pid)] = b }
            }
            let resolve = try await ChildProcess.lockvault(["resolve", "--json", "--dsn", dsn] + resolveFlags + (execute ? ["--execute"] : []))
            #expect(resolve.stderr.isEmpty, "\(resolve)")
            var decisions: [Int32: (String, String)] = [:]
            for d in try #require(try JSONSerialization.jsonObject(with: Data(resolve.stdout.utf8)) as? [[String: Any]], "\(resolve)") {
                if let pid = d["pid"] as? Int { decisions[Int32(pid)] = (d["decision"] as? String ?? "?", d["reason"] as? String ?? "?") }
            }
            var dashboard: [Int32: [String: String?]] = [:]
            for r in try s.rows("SELECT session_pid, blocks_as, held_lock_mode, queued_for_mode FROM lock_monitoring.blocking_sessions_dashboard WHERE session_pid IS NOT NULL") {
                dashboard[try r.decode("session_pid", as: Int32.self)] = [
                    "blocks_as": try r.decode("blocks_as", as: String?.self), "held_lock_mode": try r.decode("held_lock_mode", as: String?.self),
                    "queued_for_mode": try r.decode("queued_for_mode", as: String?.self),
                ]
            }
            var waiting: [Int32: (Int32?, String?)] = [:]
            for r in try s.rows("SELECT session_pid, blocking_pid, block_kind FROM lock_monitoring.lock_activity_dashboard WHERE NOT granted") {
                waiting[try r.decode("session_pid", as: Int32.self)] = (try r.decode("blocking_pid", as: Int32?.self), try r.decode("block_kind", as: String?.self))
            }
            var links: [String: String] = [:]
            for r in try s.rows("""
                SELECT w.session_pid AS waiter, b.session_pid AS blocker, l.block_kind FROM lock_monitoring.lock_blocking_l l
                JOIN lock_monitoring.blocking_session_h w ON w.blocking_session_hk = l.blocked_session_hk
                JOIN lock_monitoring.blocking_session_h b ON b.blocking_session_hk = l.blocking_session_hk
                """) {
                links["\(try r.decode("waiter", as: Int32.self))>\(try r.decode("blocker", as: Int32?.self) ?? 0)"] = try r.decode("block_kind", as: String?.self) ?? "<NULL>"
            }
            return Seen(tree: tree.stdout, json: blockers, dashboard: dashboard, waiting: waiting, links: links, decisions: decisions, resolveStatus: resolve.status)
        }

        static func line(of session: BackgroundSession, in tree: String) -> String {
            tree.split(separator: "\n").first { $0.contains("pid \(session.pid) ") }.map(String.init) ?? "<no line for pid \(session.pid)>"
        }

        static func expectQueued(_ seen: Seen, _ m: BackgroundSession, ahead count: Int, for mode: String, sourceLocation: SourceLocation = #_sourceLocation) {
            let json = seen.json[m.pid] ?? [:]
            #expect(json["blocksAs"] as? String == "queued", "\(json)", sourceLocation: sourceLocation)
            #expect(json["heldMode"] == nil, "a queued request holds nothing its waiters want: \(json)", sourceLocation: sourceLocation)
            #expect(json["queuedForMode"] as? String == mode, sourceLocation: sourceLocation)
            #expect(seen.dashboard[m.pid]?["blocks_as"] == "queued", "\(seen.dashboard)", sourceLocation: sourceLocation)
            #expect(seen.dashboard[m.pid]?["held_lock_mode"] == .some(nil), "\(seen.dashboard)", sourceLocation: sourceLocation)
            #expect(seen.dashboard[m.pid]?["queued_for_mode"] == mode, sourceLocation: sourceLocation)
            let line = Self.line(of: m, in: seen.tree)
            #expect(line.contains("queued ahead of \(count) for \(mode)"), "\(seen.tree)", sourceLocation: sourceLocation)
            #expect(!line.contains("holds"), "\(seen.tree)", sourceLocation: sourceLocation)
        }

        static func expectHolder(_ seen: Seen, _ h: BackgroundSession, holding mode: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(seen.json[h.pid]?["blocksAs"] as? String == "holder", sourceLocation: sourceLocation)
            #expect(seen.json[h.pid]?["heldMode"] as? String == mode, sourceLocation: sourceLocation)
            #expect(seen.dashboard[h.pid]?["blocks_as"] == "holder", sourceLocation: sourceLocation)
            #expect(seen.dashboard[h.pid]?["held_lock_mode"] == mode, sourceLocation: sourceLocation)
            #expect(Self.line(of: h, in: seen.tree).contains("holds \(mode)"), "\(seen.tree)", sourceLocation: sourceLocation)
        }

        static func scenario(_ body: (EngineScenario) async throws -> Void) async throws {
            try ResolveLiveTests.ensureRoles()
            try await EngineScenario.run { s in
                try ResolveLiveTests.prepare(s)
                try s.admin.executeScript("CREATE TABLE qt (id int); INSERT INTO qt VALUES (1); ALTER TABLE qt OWNER TO lv_app;")
                try await body(s)
            }
        }

        static func state(_ s: EngineScenario, _ session: BackgroundSession) throws -> String? {
            try s.rows("SELECT state FROM pg_stat_activity WHERE pid = $1", [session.pid]).first?.decode("state", as: String?.self)
        }

        /// The most common lock outage: a migration behind a long transaction, the app behind the
        /// migration; then `--execute` cancels only the migration's statement.
        @Test func aMigrationQueuedBehindALongTransactionIsQueuedAndItsCancelLetsTheReadersThrough() async throws {
            try await Self.scenario { s in
                let h = try await s.session("lv-report", user: "lv_app"), m = try await s.session("lv-migration", user: "lv_app")
                try await h.run("BEGIN", "SELECT * FROM qt")
                let migration = m.start("ALTER TABLE qt ADD COLUMN note text")
                try await s.waitForWaiters(1)
                let readers = try await [s.session("lv-web-1", user: "lv_app"), s.session("lv-web-2", user: "lv_app")]
                let reads = readers.map { $0.start("SELECT * FROM qt") }

                let seen = try await Self.observe(s, waiters: 3)
                Self.expectQueued(seen, m, ahead: 2, for: "AccessExclusiveLock")
                Self.expectHolder(seen, h, holding: "AccessShareLock")
                #expect(!seen.tree.contains("holds AccessExclusiveLock"), "\(seen.tree)")
                for r in readers {
                    #expect(seen.waiting[r.pid]?.blockingPid == m.pid && seen.waiting[r.pid]?.kind == "soft", "\(seen.waiting)")
                    #expect(seen.link(r, m) == "soft", "\(seen.links)")
                }
                #expect(seen.waiting[m.pid]?.blockingPid == h.pid && seen.waiting[m.pid]?.kind == "hard", "\(seen.waiting)")
                #expect(seen.link(m, h) == "hard", "\(seen.links)")
                #expect(seen.resolveStatus == 2)
                #expect(seen.decisions[m.pid]?.decision == "would_cancel", "\(seen.decisions)")
                #expect(seen.decisions[h.pid]?.reason == KillIneligibility.queuedRequestFirst(pid: m.pid).description, "\(seen.decisions)")

                let acted = try await Self.observe(s, waiters: 3, execute: true)
                #expect(acted.decisions[m.pid]?.decision == "cancelled", "\(acted.decisions)")
                #expect(acted.decisions[h.pid]?.decision == "skipped", "\(acted.decisions)")
                try await waitUntil("the readers finish", timeout: .seconds(2)) {
                    try readers.allSatisfy { try Self.state(s, $0) == "idle" }
                }
                for read in reads { if case .failure(let e) = await read.value { Issue.record("a reader failed: \(e)") } }
                guard case .failure(let e) = await migration.value else { Issue.record("the migration's statement should be cancelled"); return }
                #expect(e.sqlState == "57014", "\(e)")
                #expect(try Self.state(s, m) == "idle", "the migration's session stays connected")
                #expect(try Self.state(s, h) == "idle in transaction", "the holder is untouched")
                try await KillRuleLiveTests.release(s, [])
            }
        }

        /// worker-1 holds an advisory lock; worker-3 queues for it, worker-2 behind worker-3.
        @Test func anAdvisoryQueue() async throws {
            try await Self.scenario { s in
                let w1 = try await s.session("demo-worker-1", user: "lv_app"), w3 = try await s.session("demo-worker-3", user: "lv_app")
                let w2 = try await s.session("demo-worker-2", user: "lv_app")
                try await w1.run("BEGIN", "SELECT pg_advisory_xact_lock(4242)")
                let t3 = w3.start("SELECT pg_advisory_lock(4242)")
                try await s.waitForWaiters(1)
                let t2 = w2.start("SELECT pg_advisory_lock(4242)")
                let seen = try await Self.observe(s, waiters: 2)
                Self.expectQueued(seen, w3, ahead: 1, for: "ExclusiveLock")
                Self.expectHolder(seen, w1, holding: "ExclusiveLock")
                #expect(seen.link(w2, w3) == "soft" && seen.link(w2, w1) == "hard" && seen.link(w3, w1) == "hard", "\(seen.links)")
                #expect(seen.decisions[w3.pid]?.reason == KillIneligibility.queuedRequestFreesNoOne.description, "\(seen.decisions)")
                #expect(seen.decisions[w1.pid]?.decision == "would_terminate", "\(seen.decisions)")
                try await KillRuleLiveTests.release(s, [t2, t3])
            }
        }

        /// CREATE INDEX (ShareLock) queued behind an open UPDATE (RowExclusiveLock), with writers
        /// behind the CREATE INDEX: their RowExclusiveLock is compatible with the UPDATE's.
        @Test func createIndexQueuedBehindAnUpdateWithWritersBehindIt() async throws {
            try await Self.scenario { s in
                let u = try await s.session("lv-update", user: "lv_app"), c = try await s.session("lv-create-index", user: "lv_app")
                try await u.run("BEGIN", "UPDATE qt SET id = id")
                let index = c.start("CREATE INDEX ON qt (id)")
                try await s.waitForWaiters(1)
                let writers = try await [s.session("lv-writer-1", user: "lv_app"), s.session("lv-writer-2", user: "lv_app")]
                let writes = writers.map { $0.start("INSERT INTO qt VALUES (2)") }
                let seen = try await Self.observe(s, waiters: 3)
                Self.expectQueued(seen, c, ahead: 2, for: "ShareLock")
                Self.expectHolder(seen, u, holding: "RowExclusiveLock")
                for w in writers { #expect(seen.waiting[w.pid]?.kind == "soft" && seen.link(w, c) == "soft", "\(seen.waiting) \(seen.links)") }
                #expect(seen.waiting[c.pid]?.kind == "hard", "\(seen.waiting)")
                #expect(seen.decisions[c.pid]?.decision == "would_cancel", "\(seen.decisions)")
                try await KillRuleLiveTests.release(s, writes + [index])
            }
        }

        /// A row lock: the waiter waits for the holder's transaction id, always a hard edge.
        @Test func aTransactionIdWaitIsHard() async throws {
            try await Self.scenario { s in
                let t1 = try await s.session("lv-row-holder", user: "lv_app"), t2 = try await s.session("lv-row-waiter", user: "lv_app")
                try await t1.run("BEGIN", "UPDATE qt SET id = id WHERE id = 1")
                let wait = t2.start("UPDATE qt SET id = id WHERE id = 1")
                let seen = try await Self.observe(s, waiters: 1)
                Self.expectHolder(seen, t1, holding: "ExclusiveLock")
                #expect(seen.json[t2.pid] == nil, "the waiter blocks no one")
                #expect(seen.waiting[t2.pid]?.blockingPid == t1.pid && seen.waiting[t2.pid]?.kind == "hard", "\(seen.waiting)")
                #expect(seen.link(t2, t1) == "hard", "\(seen.links)")
                #expect(!seen.tree.contains("queued ahead"), "\(seen.tree)")
                #expect(seen.decisions[t1.pid]?.decision == "would_terminate", "\(seen.decisions)")
                try await KillRuleLiveTests.release(s, [wait])
            }
        }

        /// The holder's ShareLock conflicts with the writer's RowExclusiveLock too: cancelling the
        /// queued ALTER TABLE would free no one, and the resolver says so.
        @Test func aQueuedRequestWhoseWaitersWouldNotBeFreedIsSkipped() async throws {
            try await Self.scenario { s in
                let h = try await s.session("lv-share", user: "lv_app"), m = try await s.session("lv-migration", user: "lv_app")
                try await h.run("BEGIN", "LOCK TABLE qt IN SHARE MODE")
                let migration = m.start("ALTER TABLE qt ADD COLUMN note text")
                try await s.waitForWaiters(1)
                let w = try await s.session("lv-writer", user: "lv_app")
                let write = w.start("INSERT INTO qt VALUES (3)")
                let seen = try await Self.observe(s, waiters: 2)
                Self.expectQueued(seen, m, ahead: 1, for: "AccessExclusiveLock")
                Self.expectHolder(seen, h, holding: "ShareLock")
                #expect(seen.link(w, m) == "soft" && seen.link(w, h) == "hard", "\(seen.links)")
                #expect(seen.decisions[m.pid]?.decision == "skipped", "\(seen.decisions)")
                #expect(seen.decisions[m.pid]?.reason == KillIneligibility.queuedRequestFreesNoOne.description, "\(seen.decisions)")
                try await KillRuleLiveTests.release(s, [write, migration])
            }
        }
    }
}
