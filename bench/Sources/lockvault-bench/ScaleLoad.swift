// bench/scale.sh's standing load: many backends each holding many locks, as a cluster whose
// queries touch partitioned tables does (a lock per partition), with or without a stream of new
// lock waits. It only makes the load; the script measures the arms against it.
//
// Commands on stdin, one a line; after each it prints "ready <command>" once the load stands:
//   locks N    every holder releases its locks and takes ACCESS SHARE on N partitions
//   waits R    R new row-lock waits a second (each lasts `waitSeconds`), 0 for none
import Foundation
import PostgresClient

/// The partitioned table the holders lock: `sc_parent` with `partitions` partitions `sc_p1…`.
func scaleSetupSQL(partitions: Int) -> String {
    """
    CREATE TABLE IF NOT EXISTS sc_parent (k int) PARTITION BY RANGE (k);
    DO $$ BEGIN FOR i IN 1..\(partitions) LOOP
      EXECUTE format('CREATE TABLE IF NOT EXISTS sc_p%s PARTITION OF sc_parent FOR VALUES FROM (%s) TO (%s)', i, i, i + 1);
    END LOOP; END $$;
    CREATE TABLE IF NOT EXISTS sc_row (id int PRIMARY KEY, n int);
    INSERT INTO sc_row VALUES (1, 0) ON CONFLICT DO NOTHING;
    """
}

/// The statement a holder runs to hold `locks` relation locks: the first `locks` partitions.
func scaleLockStatement(locks: Int, holder: Int, partitions: Int) -> String {
    // Holders start at different partitions, so lock objects are shared by a few holders each,
    // as in a cluster whose sessions touch overlapping parts of a table.
    let names = (0..<locks).map { "sc_p\(((holder * 7 + $0) % partitions) + 1)" }
    return "LOCK TABLE \(names.joined(separator: ", ")) IN ACCESS SHARE MODE"
}

func scaleLoad(db: String, backends: Int, partitions: Int, waitSeconds: Double) async throws {
    let settings = SessionSettings(applicationName: "lv-bench-scale", statementTimeoutMs: 0, lockTimeoutMs: 0, idleInTransactionSessionTimeoutMs: 0)
    let setup = try PostgresConnection(conninfo: "dbname=\(db)", settings: settings)
    try setup.executeScript(scaleSetupSQL(partitions: partitions))
    var holders: [PostgresConnection] = []
    for _ in 0..<backends { holders.append(try PostgresConnection(conninfo: "dbname=\(db)", settings: settings)) }
    // One row blocker; waiters queue on its row and give up after waitSeconds (lock_timeout).
    let blocker = try PostgresConnection(conninfo: "dbname=\(db)", settings: settings)
    try blocker.execute("BEGIN")
    try blocker.execute("UPDATE sc_row SET n = n + 1 WHERE id = 1")
    var waiterSettings = settings
    waiterSettings.lockTimeoutMs = Int(waitSeconds * 1000)
    let rate = WaitRate()
    let poolSize = max(4, Int((waitSeconds + 1) * 12))
    let pool = (0..<poolSize).map { _ in PostgresSession(conninfo: "dbname=\(db)", settings: waiterSettings, name: "lv-bench-scale-waiter") }
    let stream = Task {
        var next = 0
        while !Task.isCancelled {
            let r = await rate.value
            if r <= 0 { try? await Task.sleep(for: .milliseconds(50)); continue }
            let s = pool[next % pool.count]
            next += 1
            Task { _ = try? await s.withConnection { try $0.query("UPDATE sc_row SET n = n + 1 WHERE id = 1") } }
            try? await Task.sleep(for: .milliseconds(Int(1000 / r)))
        }
    }
    var holding = false
    while let line = readLine() {
        let words = line.split(separator: " ").map(String.init)
        guard words.count == 2, let n = Double(words[1]) else { throw BenchError("scale-load: unknown command '\(line)'") }
        switch words[0] {
        case "locks":
            for (i, h) in holders.enumerated() {
                if holding { try h.execute("ROLLBACK") }
                if n > 0 {
                    try h.execute("BEGIN")
                    try h.execute(scaleLockStatement(locks: Int(n), holder: i, partitions: partitions))
                }
            }
            holding = n > 0
        case "waits":
            await rate.set(n)
        default:
            throw BenchError("scale-load: unknown command '\(line)'")
        }
        FileHandle.standardOutput.write(Data("ready \(line)\n".utf8))
    }
    await rate.set(0)
    stream.cancel()
    _ = await stream.value
    try blocker.execute("ROLLBACK")
    if holding { for h in holders { try h.execute("ROLLBACK") } }
    for s in pool { await s.close() }
    for h in holders { h.close() }
    blocker.close()
    setup.close()
}

actor WaitRate {
    var value: Double = 0
    func set(_ v: Double) { value = v }
}
