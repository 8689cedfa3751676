import Foundation
import PostgresClient
import Testing

/// A real deadlock between two sessions, broken by PostgreSQL's detector after
/// deadlock_timeout (1 s on the test cluster).
struct RealDeadlock {
    enum Kind {
        /// Two UPDATEs of each other's row: the DETAIL names transaction ids only.
        case rows
        /// Two LOCK TABLEs of each other's table: the DETAIL names `relation … of database OID`.
        case tables
    }

    var pids: [Int32]
    /// The session that got 40P01.
    var victim: Int32
    /// What each ran when it deadlocked.
    var queries: [Int32: String]

    /// Creates its tables (once per database), runs the deadlock, and waits until both
    /// sessions have left their transactions (only then does the victim's session flush the
    /// pg_stat_database.deadlocks increment). `during` runs while the server breaks it.
    static func provoke(database: String, kind: Kind = .rows, during: () async throws -> Void = {}) async throws -> RealDeadlock {
        let admin = try LiveDatabase.connect(database: database, applicationName: "lv-test-admin")
        defer { admin.close() }
        try admin.executeScript("""
            CREATE TABLE IF NOT EXISTS dl (id int PRIMARY KEY, v int); INSERT INTO dl VALUES (1, 0), (2, 0) ON CONFLICT DO NOTHING;
            CREATE TABLE IF NOT EXISTS dl_a (id int); CREATE TABLE IF NOT EXISTS dl_b (id int);
            """)
        let a = try await BackgroundSession(database: database, applicationName: "lv-dl-a")
        let b = try await BackgroundSession(database: database, applicationName: "lv-dl-b")
        do {
            let deadlock = try await run(a, b, admin: admin, kind: kind, during: during)
            await a.close(); await b.close()
            return deadlock
        } catch {
            await a.close(); await b.close()
            throw error
        }
    }

    private static func run(_ a: BackgroundSession, _ b: BackgroundSession, admin: PostgresConnection, kind: Kind,
                            during: () async throws -> Void) async throws -> RealDeadlock {
        let (firstA, firstB, secondA, secondB) = switch kind {
        case .rows: ("UPDATE dl SET v = 1 WHERE id = 1", "UPDATE dl SET v = 2 WHERE id = 2", "UPDATE dl SET v = 1 WHERE id = 2", "UPDATE dl SET v = 2 WHERE id = 1")
        case .tables: ("LOCK TABLE dl_a IN ACCESS EXCLUSIVE MODE", "LOCK TABLE dl_b IN ACCESS EXCLUSIVE MODE",
                       "LOCK TABLE dl_b IN ACCESS EXCLUSIVE MODE", "LOCK TABLE dl_a IN ACCESS EXCLUSIVE MODE")
        }
        try await a.run("BEGIN", firstA)
        try await b.run("BEGIN", firstB)
        let aTask = a.start(secondA)
        try await waitUntil("session a waits", timeout: .seconds(20)) {
            try admin.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock'", [a.pid]).count == 1
        }
        let bTask = b.start(secondB)
        let done = Task { (await aTask.value, await bTask.value) }
        try await during()
        let (ra, rb) = await done.value
        func isVictim(_ r: Result<Void, PostgresError>) -> Bool {
            if case .failure(let e) = r { return e.sqlState == SQLState.deadlockDetected }
            return false
        }
        try #require([ra, rb].filter(isVictim).count == 1, "exactly one participant was cancelled with 40P01: \(ra), \(rb)")
        try await a.run("ROLLBACK")
        try await b.run("ROLLBACK")
        return RealDeadlock(pids: [a.pid, b.pid], victim: isVictim(ra) ? a.pid : b.pid, queries: [a.pid: secondA, b.pid: secondB])
    }

    /// pg_stat_database.deadlocks of `database` now.
    static func counter(_ database: String) throws -> Int64 {
        let admin = try LiveDatabase.connect()
        defer { admin.close() }
        return try admin.query("SELECT deadlocks FROM pg_stat_database WHERE datname = $1", [database])[0].decode("deadlocks", as: Int64.self)
    }

    /// Waits until the victim's session has flushed its statistics: the counter exceeds `before`.
    static func waitForCounter(_ database: String, above before: Int64) async throws {
        try await waitUntil("pg_stat_database.deadlocks of \(database) moves past \(before)", timeout: .seconds(30), every: .milliseconds(100)) {
            try counter(database) > before
        }
    }
}
