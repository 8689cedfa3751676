// Issue 16's worst case as a standing load for the daemon-CPU part of bench/run.sh: 200 backends,
// 150 idle in transaction holding ACCESS SHARE on 20 tables each (≈ 3,000 locks), 40 idle, and one
// row blocker (idle in transaction after an UPDATE) with 10 waiters. Prints "ready" once all of
// it stands, then holds it until stdin closes (run.sh closes it when the window ends).
import Foundation
import PostgresClient

func worstCaseLoad(db: String, backends: Int, waiters: Int) async throws {
    let settings = SessionSettings(applicationName: "lv-bench-worst", statementTimeoutMs: 0, lockTimeoutMs: 0, idleInTransactionSessionTimeoutMs: 0)
    let setup = try PostgresConnection(conninfo: "dbname=\(db)", settings: settings)
    try setup.executeScript("""
        DO $$ BEGIN FOR i IN 1..1000 LOOP EXECUTE format('CREATE TABLE IF NOT EXISTS wc_t%s (id int)', i); END LOOP; END $$;
        CREATE TABLE IF NOT EXISTS wc_row (id int PRIMARY KEY, n int);
        INSERT INTO wc_row VALUES (1, 0) ON CONFLICT DO NOTHING;
        """)
    var holders: [PostgresConnection] = []
    for i in 0..<(backends - 1) {
        let c = try PostgresConnection(conninfo: "dbname=\(db)", settings: settings)
        if i < backends * 3 / 4 {
            try c.execute("BEGIN")
            try c.execute("LOCK TABLE \((0..<20).map { "wc_t\(((i * 20 + $0) % 1000) + 1)" }.joined(separator: ", ")) IN ACCESS SHARE MODE")
        }
        holders.append(c)
    }
    let blocker = try PostgresConnection(conninfo: "dbname=\(db)", settings: settings)
    try blocker.execute("BEGIN")
    try blocker.execute("UPDATE wc_row SET n = n + 1 WHERE id = 1")
    var sessions: [PostgresSession] = []
    var tasks: [Task<Void, Never>] = []
    for _ in 0..<waiters {
        let s = PostgresSession(conninfo: "dbname=\(db)", settings: settings)
        sessions.append(s)
        tasks.append(Task { _ = try? await s.withConnection { try $0.query("UPDATE wc_row SET n = n + 1 WHERE id = 1") } })
    }
    while try setup.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'lv-bench-worst'")[0].decode("n", as: Int.self) < waiters {
        try await Task.sleep(for: .milliseconds(20))
    }
    FileHandle.standardOutput.write(Data("ready\n".utf8))
    while readLine() != nil {}
    try blocker.execute("ROLLBACK")
    blocker.close()
    for t in tasks { await t.value }
    for s in sessions { await s.close() }
    for c in holders { c.close() }
    setup.close()
}
