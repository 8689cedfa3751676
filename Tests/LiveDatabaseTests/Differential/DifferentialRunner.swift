import Foundation
import LockvaultCore
import LockvaultEngine
import PostgresClient

/// What one differential run found.
struct DifferentialTally {
    var scenarios = 0
    var pointsCompared = 0
    /// What the compared points covered: server edges in all, hard and soft; points where a
    /// parallel worker waited; edges to a prepared transaction.
    var edgesCompared = 0
    var softEdges = 0
    var pointsWithWorkers = 0
    var preparedEdges = 0
    /// Points where the server's answer moved under the read until the deadline: skipped,
    /// never counted as a difference.
    var pointsUnstable = 0
    /// Steps after which a session neither waited nor finished in time (not compared).
    var unsettled = 0
    /// Of the points the blocking_pids reader compared, those where it asked `pg_blocking_pids()`
    /// in its statement and read no pg_locks (the answer's kinds by ``AnsweredWaits``), and
    /// those where it had to make the pass after all (a kind only pg_locks tells).
    var answeredWithoutPass = 0
    var answeredWithPass = 0
    var differences: [Difference] = []
    /// How often each kind of difference was seen (a scenario counts each kind once).
    var kinds: [String: Int] = [:]

    struct Difference {
        var seed: UInt64
        var kinds: [String]
        var report: String
    }
}

/// Runs scenarios on reused sessions and compares lockvault's edges with the server's at every
/// stable point.
final class DifferentialRunner {
    let admin: PostgresConnection
    let readerConn: PostgresConnection
    let conninfo: String
    let sessions: [DifferentialSession]
    let serverVersion: String
    let parallelSetting: String
    private var pids: [Int32] = []

    static let settleTimeout: Duration = .seconds(5)
    static let stableTimeout: Duration = .seconds(3)

    init(database: String) throws {
        conninfo = try LiveDatabase.conninfo(database: database)
        admin = try LiveDatabase.connect(database: database, applicationName: "lv-diff-admin")
        readerConn = try LiveDatabase.connect(database: database, applicationName: "lockvault")
        let conninfo = conninfo
        sessions = (0..<8).map { DifferentialSession(conninfo: conninfo, index: $0) }
        serverVersion = try admin.query("SHOW server_version")[0].decode("server_version", as: String.self)
        parallelSetting = admin.serverVersion >= 160000 ? "debug_parallel_query" : "force_parallel_mode"
    }

    func close() async {
        for s in sessions { await s.close() }
        admin.close()
        readerConn.close()
    }

    /// Runs the scenario of `seed`; a difference ends it (what follows would repeat it).
    func run(seed: UInt64, into tally: inout DifferentialTally) async throws {
        var scenario = DifferentialScenario(seed: seed, parallelSetting: parallelSetting)
        let used = Array(sessions.prefix(scenario.sessions.count))
        pids = []
        let deadlockTimeout = "\(scenario.deadlockTimeoutMs)ms"
        for s in used {
            pids.append(try await s.pid())
            try await s.session.withConnection { conn in
                _ = try conn.query("SELECT set_config('deadlock_timeout', $1, false)", [deadlockTimeout])
            }
        }
        // Each way of learning a new wait (LockReadPlan) has its own reader, compared at every point.
        let readers = LockReadPlan.Way.allCases.map { way in
            (way, SnapshotReader(options: SnapshotOptions(lockTableCheckIntervalSeconds: 3600, minWaitSeconds: 0, lockRead: way),
                                 conninfo: conninfo, settings: SessionSettings(applicationName: "lockvault")))
        }
        defer { for (_, r) in readers { r.close() } }
        tally.scenarios += 1
        var next = Array(repeating: 0, count: used.count)
        var issued: [String] = []
        while true {
            let free = scenario.sessions.indices.filter { next[$0] < scenario.sessions[$0].steps.count && !used[$0].isBusy }
            if free.isEmpty { break }
            let i = scenario.interleaving.pick(free)
            let statements = scenario.sessions[i].steps[next[i]]
            next[i] += 1
            issued.append("\(scenario.sessions[i].name): \(statements.joined(separator: "; "))")
            used[i].issue(statements)
            if try await !settle(used, scenario) { tally.unsettled += 1; continue }
            if let found = try await compare(scenario, readers: readers, issued: issued, tally: &tally) {
                record(found, into: &tally)
                break
            }
        }
        try await cleanUp(used, scenario)
    }

    private func record(_ d: DifferentialTally.Difference, into tally: inout DifferentialTally) {
        tally.differences.append(d)
        for k in Set(d.kinds) { tally.kinds[k, default: 0] += 1 }
    }

    /// Waits until every busy session waits on a lock (itself or through a parallel worker) and,
    /// with a short deadlock_timeout, until every wait has lived past it: the detector has then
    /// acted on each (cancelled a victim, or reordered a queue) and the point is the same in
    /// every replay of the seed.
    private func settle(_ used: [DifferentialSession], _ scenario: DifferentialScenario) async throws -> Bool {
        let deadline = ContinuousClock.now + Self.settleTimeout
        while true {
            if !used.contains(where: \.isBusy) { return true }
            if scenario.deadlockTimeoutMs < 1000, try !waitsPastDeadlockTimeout(scenario) {
                if ContinuousClock.now >= deadline { return false }
                try await Task.sleep(for: .milliseconds(5))
                continue
            }
            let waiting = Set(try admin.query("SELECT coalesce(leader_pid, pid) AS grp FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                .map { try $0.decode("grp", as: Int32.self) })
            // Busy read after the server's answer: a step that finished meanwhile is not waited for.
            if used.indices.filter({ used[$0].isBusy }).allSatisfy({ waiting.contains(pids[$0]) }) { return true }
            if ContinuousClock.now >= deadline { return false }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Whether every ungranted lock of the scenario's sessions (and their workers) is older
    /// than deadlock_timeout and a margin for the detector's run.
    private func waitsPastDeadlockTimeout(_ scenario: DifferentialScenario) throws -> Bool {
        try admin.query("""
            SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a USING (pid)
            WHERE NOT l.granted AND coalesce(a.leader_pid, a.pid) = ANY($1::int[])
              AND (l.waitstart IS NULL OR l.waitstart > clock_timestamp() - $2::interval)
            """, ["{" + pids.map(String.init).joined(separator: ",") + "}", "\(scenario.deadlockTimeoutMs + 100) ms"])[0].decode("n", as: Int.self) == 0
    }

    /// Reads the server, lockvault, the server again, until the two server readings agree (and
    /// every wait has its waitstart); then compares. Returns the difference, if any.
    private func compare(_ scenario: DifferentialScenario, readers: [(LockReadPlan.Way, SnapshotReader)], issued: [String],
                         tally: inout DifferentialTally) async throws -> DifferentialTally.Difference? {
        let deadline = ContinuousClock.now + Self.stableTimeout
        while true {
            let before = try ServerWaits.read(admin, sessions: pids)
            let snapshots = try readers.map { ($0.0, try $0.1.read(readerConn, monitorPids: [admin.backendPID])) }
            let after = try ServerWaits.read(admin, sessions: pids)
            if before == after, before.unstamped == 0 {
                tally.pointsCompared += 1
                tally.edgesCompared += before.edges.count
                tally.softEdges += before.edges.filter { $0.kind == "soft" }.count
                tally.preparedEdges += before.edges.filter { $0.blocker == 0 }.count
                if before.workers.values.contains(where: before.waiters.contains) { tally.pointsWithWorkers += 1 }
                for (way, snapshot) in snapshots {
                    if way == .blockingPids, snapshot.lockReads[.blockingPids] != nil {
                        if snapshot.lockReads[.pgLocks] == nil { tally.answeredWithoutPass += 1 } else { tally.answeredWithPass += 1 }
                    }
                    let lockvault = LockvaultWaits(snapshot, sessions: Set(pids), workers: before.workers)
                    guard var found = difference(scenario, server: before, lockvault: lockvault, issued: issued) else { continue }
                    found.kinds = found.kinds.map { "\(way.rawValue) way: \($0)" }
                    found.report = "the \(way.rawValue) way (LockReadPlan), this cycle: \(snapshot.lockReads.map { "\($0.key.rawValue) \($0.value)" }.sorted().joined(separator: ", "))\n"
                        + found.report + "\n" + (try freshReading(server: before))
                        + "\nthis reader's locks: " + snapshot.locks.filter { $0.pid.map(Set(pids).contains) ?? true }.map { "\($0.pid ?? 0) \($0.granted ? "holds" : "waits") \($0.mode) \($0.targetDescription)" }.joined(separator: "; ")
                        + "\nits backends: " + snapshot.backends.map { "\($0.pid) \($0.waitEventType ?? "-")/\($0.waitEvent ?? "-") by \($0.blockedBy)" }.joined(separator: "; ")
                        + "\nkinds pg_blocking_pids() answered: \(snapshot.answeredKinds)"
                    return found
                }
                return nil
            }
            if ContinuousClock.now >= deadline { tally.pointsUnstable += 1; return nil }
            try await Task.sleep(for: .milliseconds(3))
        }
    }

    /// What a reader with no memory, reading everything, says of the same moment: tells a
    /// difference of the queue rule from one of what the carrying reader remembered.
    private func freshReading(server: ServerWaits) throws -> String {
        let fresh = SnapshotReader(options: SnapshotOptions(lockTableCheckIntervalSeconds: 3600, readOnlyWhatChanged: false, minWaitSeconds: 0),
                                   conninfo: conninfo, settings: SessionSettings(applicationName: "lockvault"))
        defer { fresh.close() }
        let snapshot = try fresh.read(readerConn, monitorPids: [admin.backendPID])
        guard try ServerWaits.read(admin, sessions: pids) == server else { return "a fresh reader: not compared (the waits moved)" }
        let edges = LockvaultWaits(snapshot, sessions: Set(pids), workers: server.workers).edges
        return Set(edges) == Set(server.edges) ? "a fresh reader (no memory, reading everything) agrees with the server: the difference is in what was carried"
            : "a fresh reader (no memory, reading everything) differs too"
    }

    private func difference(_ scenario: DifferentialScenario, server: ServerWaits, lockvault: LockvaultWaits, issued: [String]) -> DifferentialTally.Difference? {
        let serverSet = Set(server.edges), ours = Set(lockvault.edges)
        let phantomCycle = !lockvault.cycles.isEmpty && !hasCycle(server.edges)
        guard serverSet != ours || phantomCycle else { return nil }
        let name = names(server.workers)
        func show(_ e: DiffEdge) -> String { "\(name(e.waiter)) → \(name(e.blocker)) \(e.kind)" }
        var kinds: [String] = [], lines: [String] = []
        let lockvaultPairs = Dictionary(lockvault.edges.map { ([$0.waiter, $0.blocker], $0.kind) }, uniquingKeysWith: { a, _ in a })
        let serverPairs = Dictionary(server.edges.map { ([$0.waiter, $0.blocker], $0.kind) }, uniquingKeysWith: { a, _ in a })
        for e in server.edges where !ours.contains(e) {
            if let k = lockvaultPairs[[e.waiter, e.blocker]] {
                kinds.append("kind differs (server \(e.kind), lockvault \(k))")
                lines.append("kind: \(show(e)) on the server, \(k) in lockvault")
            } else {
                kinds.append(e.blocker == 0 ? "missing edge to a prepared transaction" : "missing edge (server only)")
                lines.append("server only: \(show(e))")
            }
        }
        for e in lockvault.edges where !serverSet.contains(e) && serverPairs[[e.waiter, e.blocker]] == nil {
            if server.workers[e.waiter] != nil || server.workers[e.blocker] != nil {
                kinds.append(server.workers[e.waiter] != nil ? "parallel worker named as waiter" : "parallel worker named as blocker")
            } else {
                kinds.append("extra edge (lockvault only)")
            }
            lines.append("lockvault only: \(show(e))")
        }
        if phantomCycle {
            kinds.append("cycle the server does not have (phantom deadlock)")
            lines.append("lockvault's graph has the cycle(s) \(lockvault.cycles.map { $0.map(name).joined(separator: " ↔ ") }); the server's edges have none")
        }
        let report = """
            DIFFERENCE on PostgreSQL \(serverVersion), seed \(scenario.seed), after step \(issued.count)
            \(scenario.script)
            steps issued, in order:
            \(issued.enumerated().map { "  \($0.offset + 1). \($0.element)" }.joined(separator: "\n"))
            sessions: \(pids.enumerated().map { "s\($0.offset) = pid \($0.element)" }.joined(separator: ", "))\(server.workers.isEmpty ? "" : "; workers: " + server.workers.sorted { $0.key < $1.key }.map { "\($0.key) of \(name($0.value))" }.joined(separator: ", "))
            server (pg_blocking_pids):  \(server.edges.map(show).joined(separator: ", "))
            lockvault (WaitGraph):      \(lockvault.edges.map(show).joined(separator: ", "))
            \(lines.map { "  - " + $0 }.joined(separator: "\n"))
            reproduce: \(scenario.reproduction)
            """
        return DifferentialTally.Difference(seed: scenario.seed, kinds: kinds, report: report)
    }

    private func names(_ workers: [Int32: Int32]) -> (Int32) -> String {
        let pids = self.pids
        return { pid in
            if pid == 0 { return "prepared" }
            if let i = pids.firstIndex(of: pid) { return "s\(i)" }
            if let leader = workers[pid], let i = pids.firstIndex(of: leader) { return "worker \(pid) of s\(i)" }
            return "pid \(pid)"
        }
    }

    /// Cancels every running step, rolls every session back and every prepared transaction of
    /// the scenario, so the next starts clean.
    private func cleanUp(_ used: [DifferentialSession], _ scenario: DifferentialScenario) async throws {
        let deadline = ContinuousClock.now + .seconds(15)
        while used.contains(where: \.isBusy) {
            for (i, s) in used.enumerated() where s.isBusy { _ = try admin.query("SELECT pg_cancel_backend($1)", [pids[i]]) }
            let pause = ContinuousClock.now + .milliseconds(200)
            while used.contains(where: \.isBusy), ContinuousClock.now < pause { try await Task.sleep(for: .milliseconds(2)) }
            if ContinuousClock.now >= deadline { throw TimedOut(what: "the scenario's sessions to be cancelled (seed \(scenario.seed))") }
        }
        for s in used {
            await s.finish()
            await s.runQuietly("ROLLBACK")
        }
        for gid in try admin.query("SELECT gid FROM pg_prepared_xacts WHERE gid LIKE 'lv\\_diff\\_%'").map({ try $0.decode("gid", as: String.self) }) {
            try admin.execute("ROLLBACK PREPARED '\(gid.replacingOccurrences(of: "'", with: "''"))'")
        }
    }

    /// Removes prepared transactions an interrupted earlier run left behind (in their own
    /// database: only there can they be rolled back), so their gids are free again.
    static func rollBackLeftovers() throws {
        let admin = try LiveDatabase.connect()
        defer { admin.close() }
        for row in try admin.query("SELECT gid, database FROM pg_prepared_xacts WHERE gid LIKE 'lv\\_diff\\_%'") {
            let there = try LiveDatabase.connect(database: try row.decode("database", as: String.self))
            defer { there.close() }
            try there.execute("ROLLBACK PREPARED '\(try row.decode("gid", as: String.self).replacingOccurrences(of: "'", with: "''"))'")
        }
    }
}
