import Foundation
import LockvaultCore
import PostgresClient

/// One waiter → blocker pair and its kind, by pid (0: a prepared transaction).
struct DiffEdge: Hashable, Comparable {
    var waiter: Int32
    var blocker: Int32
    var kind: String

    static func < (a: DiffEdge, b: DiffEdge) -> Bool { (a.waiter, a.blocker, a.kind) < (b.waiter, b.blocker, b.kind) }
}

/// The server's own answer: every Lock waiter among the scenario's sessions (a parallel worker's
/// wait is its leader's), its `pg_blocking_pids()`, and each edge's kind worked out here from
/// pg_locks, independently of lockvault's code: hard when the blocker's lock group holds a
/// granted lock on an object the waiter's group waits for, in a conflicting mode (or is the
/// transaction id or virtual transaction id it waits for); soft otherwise (queued ahead).
struct ServerWaits: Equatable {
    var waiters: [Int32]
    var edges: [DiffEdge]
    /// Parallel workers of the scenario's sessions: worker pid → leader pid.
    var workers: [Int32: Int32]
    /// Ungranted locks whose `waitstart` is not yet set: a wait that began a moment ago, which
    /// a reader ordering queues by `waitstart` cannot place yet. Not a stable point.
    var unstamped: Int

    /// The server's lock conflict table (the documentation's "Conflicting Lock Modes"), written
    /// out here rather than taken from lockvault, which is what is under test.
    static let conflicts: [String: [String]] = [
        "AccessShareLock": ["AccessExclusiveLock"],
        "RowShareLock": ["ExclusiveLock", "AccessExclusiveLock"],
        "RowExclusiveLock": ["ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"],
        "ShareUpdateExclusiveLock": ["ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"],
        "ShareLock": ["RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"],
        "ShareRowExclusiveLock": ["RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"],
        "ExclusiveLock": ["RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"],
        "AccessExclusiveLock": ["AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"],
    ]

    static let sql: String = {
        let pairs = conflicts.sorted { $0.key < $1.key }.flatMap { wanted, held in held.map { "('\($0)', '\(wanted)')" } }.joined(separator: ", ")
        let sameTarget = ["database", "relation", "page", "tuple", "virtualxid", "transactionid", "classid", "objid", "objsubid"]
            .map { "bl.\($0) IS NOT DISTINCT FROM wl.\($0)" }.joined(separator: " AND ")
        return """
            WITH ours AS (SELECT unnest($1::int[]) AS pid),
            act AS (SELECT pid, coalesce(leader_pid, pid) AS grp, wait_event_type FROM pg_stat_activity),
            waiters AS (SELECT DISTINCT grp AS waiter FROM act WHERE wait_event_type = 'Lock' AND grp IN (SELECT pid FROM ours)),
            workers AS (SELECT pid, grp FROM act WHERE grp <> pid AND grp IN (SELECT pid FROM ours)),
            lk AS (SELECT l.*, CASE WHEN l.pid IS NULL THEN 0 ELSE coalesce(a.grp, l.pid) END AS grp FROM pg_locks l LEFT JOIN act a ON a.pid = l.pid),
            conflicts(held, wanted) AS (VALUES \(pairs)),
            edges AS (SELECT DISTINCT w.waiter, b.blocker FROM waiters w CROSS JOIN LATERAL unnest(pg_blocking_pids(w.waiter)) AS b(blocker))
            SELECT
              (SELECT coalesce(json_agg(json_build_array(e.waiter, e.blocker,
                  CASE WHEN EXISTS (
                    SELECT 1 FROM lk wl JOIN lk bl ON bl.grp = e.blocker AND bl.granted AND bl.locktype = wl.locktype AND \(sameTarget)
                    WHERE wl.grp = e.waiter AND NOT wl.granted
                      AND (bl.locktype IN ('transactionid', 'virtualxid') OR (bl.mode, wl.mode) IN (SELECT held, wanted FROM conflicts)))
                  THEN 'hard' ELSE 'soft' END) ORDER BY e.waiter, e.blocker), '[]') FROM edges e)::text AS edges,
              (SELECT coalesce(json_agg(waiter ORDER BY waiter), '[]') FROM waiters)::text AS waiters,
              (SELECT coalesce(json_agg(json_build_array(pid, grp) ORDER BY pid), '[]') FROM workers)::text AS workers,
              (SELECT count(*) FROM pg_locks WHERE NOT granted AND waitstart IS NULL) AS unstamped
            """
    }()

    static func read(_ conn: PostgresConnection, sessions: [Int32]) throws -> ServerWaits {
        let row = try conn.query(sql, ["{" + sessions.map(String.init).joined(separator: ",") + "}"])[0]
        func json(_ column: String) throws -> [Any] {
            try JSONSerialization.jsonObject(with: Data(try row.decode(column, as: String.self).utf8)) as? [Any] ?? []
        }
        let edges = try json("edges").compactMap { e -> DiffEdge? in
            guard let a = e as? [Any], a.count == 3, let w = a[0] as? Int, let b = a[1] as? Int, let k = a[2] as? String else { return nil }
            return DiffEdge(waiter: Int32(w), blocker: Int32(b), kind: k)
        }
        var workers: [Int32: Int32] = [:]
        for w in try json("workers") {
            if let a = w as? [Int], a.count == 2 { workers[Int32(a[0])] = Int32(a[1]) }
        }
        return ServerWaits(waiters: try json("waiters").compactMap { ($0 as? Int).map(Int32.init) }, edges: edges, workers: workers,
                           unstamped: try row.decode("unstamped", as: Int.self))
    }
}

/// lockvault's answer for the same moment: the edges and kinds of ``WaitGraph`` over what
/// `SnapshotReader.read` returned, for waiters that are the scenario's sessions or their
/// workers (pid 0 for a prepared transaction, as `pg_blocking_pids()` says).
struct LockvaultWaits {
    var edges: [DiffEdge]
    /// Whether lockvault's graph holds a cycle among these edges (it would record a deadlock).
    var cycles: [[Int32]]

    init(_ snapshot: LockSnapshot, sessions: Set<Int32>, workers: [Int32: Int32]) {
        let graph = WaitGraph(snapshot)
        func pid(_ p: Participant) -> Int32 { p.pid ?? 0 }
        let relevant = sessions.union(workers.keys)
        edges = graph.edges.filter { relevant.contains(pid($0.waiter)) }
            .map { DiffEdge(waiter: pid($0.waiter), blocker: pid($0.blocker), kind: graph.kind(waiter: $0.waiter, blocker: $0.blocker).rawValue) }
            .sorted()
        cycles = graph.cycles.map { $0.map(pid) }.filter { $0.contains(where: relevant.contains) }
    }
}

/// Whether `edges` (waiter → blocker) contain a cycle.
func hasCycle(_ edges: [DiffEdge]) -> Bool {
    var next: [Int32: [Int32]] = [:]
    for e in edges { next[e.waiter, default: []].append(e.blocker) }
    var state: [Int32: Int] = [:]   // 1: on the path, 2: done
    func visit(_ n: Int32) -> Bool {
        if state[n] == 1 { return true }
        if state[n] == 2 { return false }
        state[n] = 1
        for m in next[n] ?? [] where visit(m) { return true }
        state[n] = 2
        return false
    }
    return next.keys.contains { visit($0) }
}
