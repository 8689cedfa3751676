// The fleet simulation (bench/fleet.sh, called from bench/run.sh): N synthetic clusters write
// into one vault at 1 Hz, concurrently, each through its own VaultWriter (the daemon's writer,
// on a vault connection of its own: only what changed since the cluster's last successful
// write, no call when nothing changed and no heartbeat is due; record_cycle in its own
// transaction). Their cycle streams are real cycles, sampled by
// lockvault's Monitor from a work database where real sessions hold and wait for locks: quiet,
// a steady blocker, blockers coming and going, deadlocks. Each cluster replays one stream in a
// loop under its own system_identifier, with the sample time of the moment it writes.
//
//   lockvault-bench fleet --work-db DB --vault-db DB --clusters N --seconds S   (records, then replays)
import Foundation
import LockvaultCore
import LockvaultEngine
import Logging
import PostgresClient

/// One recorded stream: cycles as the Monitor found them, in order.
struct FleetStream {
    var name: String
    var cycles: [CycleOutcome]
}

/// Hands a value to a worker thread that alone uses it from then on.
final class Handoff<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// Sleeps the calling thread (the recording runs on the main task and waits for real sessions).
func pause(_ seconds: Double) { Thread.sleep(forTimeInterval: seconds) }

/// Runs `body` on its own thread (libpq blocks): the recording's waiters, the replay's clusters.
final class Worker: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    init(_ body: @escaping @Sendable () -> Void) {
        let t = Thread { [done] in body(); done.signal() }
        t.stackSize = 1 << 20
        t.start()
    }
    func join() { done.wait() }
}

func fleetRecord(workDB: String, vaultDB: String) async throws -> [FleetStream] {
    let settings = SessionSettings(applicationName: "lv-bench-fleet", statementTimeoutMs: 0, lockTimeoutMs: 0, idleInTransactionSessionTimeoutMs: 0)
    let setup = try PostgresConnection(conninfo: "dbname=\(workDB)", settings: settings)
    try setup.executeScript("CREATE TABLE IF NOT EXISTS fleet_t (id int); CREATE TABLE IF NOT EXISTS fleet_dl (id int PRIMARY KEY, v int); INSERT INTO fleet_dl VALUES (1, 0), (2, 0) ON CONFLICT DO NOTHING")
    func waiters(_ n: Int) throws {
        let deadline = Date().addingTimeInterval(10)
        while try setup.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = $1", [workDB])[0].decode("n", as: Int.self) < n {
            guard Date() < deadline else { throw FleetError(message: "no \(n) waiters after 10 s") }
            pause(0.02)
        }
    }
    var config = MonitorConfiguration(targetDSN: "dbname=\(workDB)", vaultDSN: "dbname=\(vaultDB)", clusterName: "recorded",
                                      session: SessionSettings(applicationName: "lockvault"))
    config.severity = SeverityPolicy(mediumAfterSeconds: 1, highAfterSeconds: 3, criticalAfterSeconds: 6)
    let monitor = Monitor(configuration: config, logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() })
    func sample(_ n: Int, every: Double = 0.2) async throws -> [CycleOutcome] {
        var cycles: [CycleOutcome] = []
        for _ in 0..<n {
            let outcome = await monitor.runCycle(write: false)
            if let e = outcome.targetError { throw FleetError(message: e) }
            if outcome.snapshot != nil { cycles.append(outcome) }
            pause(every)
        }
        return cycles
    }
    _ = try await sample(2)   // baselines (deadlock counters)
    var streams: [FleetStream] = []
    streams.append(FleetStream(name: "quiet", cycles: try await sample(10)))

    // A steady blocker: one session holds EXCLUSIVE on a table, one waits.
    let holder = try PostgresConnection(conninfo: "dbname=\(workDB)", settings: settings)
    try holder.execute("BEGIN")
    try holder.execute("LOCK TABLE fleet_t IN EXCLUSIVE MODE")
    let waiter = try PostgresConnection(conninfo: "dbname=\(workDB)", settings: settings)
    let waiterBox = Handoff(waiter)
    let w = Worker { _ = try? waiterBox.value.query("SELECT * FROM fleet_t FOR UPDATE") }
    try waiters(1)
    streams.append(FleetStream(name: "steady blocker", cycles: try await sample(10)))
    try holder.execute("ROLLBACK")
    w.join()

    // Blockers coming and going: a new holder and waiter every 3 samples.
    var churn: [CycleOutcome] = []
    for _ in 0..<10 {
        let h = try PostgresConnection(conninfo: "dbname=\(workDB)", settings: settings)
        try h.execute("BEGIN")
        _ = try h.query("SELECT pg_advisory_xact_lock(9001)")
        let ws = try PostgresConnection(conninfo: "dbname=\(workDB)", settings: settings)
        let wsBox = Handoff(ws)
        let wk = Worker { _ = try? wsBox.value.query("SELECT pg_advisory_xact_lock(9001)") }
        try waiters(1)
        churn += try await sample(2)
        try h.execute("ROLLBACK")
        wk.join()
        churn += try await sample(1)
        h.close(); ws.close()
    }
    streams.append(FleetStream(name: "blockers coming and going", cycles: churn))

    // Deadlocks: two sessions update two rows in opposite order, once every 5 samples.
    var deadlocks: [CycleOutcome] = []
    for _ in 0..<4 {
        let a = try PostgresConnection(conninfo: "dbname=\(workDB)", settings: settings)
        let b = try PostgresConnection(conninfo: "dbname=\(workDB)", settings: settings)
        try a.execute("BEGIN"); try a.execute("UPDATE fleet_dl SET v = v + 1 WHERE id = 1")
        try b.execute("BEGIN"); try b.execute("UPDATE fleet_dl SET v = v + 1 WHERE id = 2")
        let aBox = Handoff(a), bBox = Handoff(b)
        let wa = Worker { _ = try? aBox.value.execute("UPDATE fleet_dl SET v = v + 1 WHERE id = 2") }
        try waiters(1)
        let wb = Worker { _ = try? bBox.value.execute("UPDATE fleet_dl SET v = v + 1 WHERE id = 1") }
        wa.join(); wb.join()
        _ = try? a.execute("ROLLBACK"); _ = try? b.execute("ROLLBACK")
        a.close(); b.close()
        deadlocks += try await sample(5, every: 0.3)
    }
    streams.append(FleetStream(name: "deadlocks", cycles: deadlocks))
    setup.close()
    waiter.close(); holder.close()
    await monitor.close()
    return streams
}

struct FleetError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Which stream cluster `i` replays: of every 20 clusters, 12 quiet, 3 with a steady blocker,
/// 4 with blockers coming and going, 1 with deadlocks.
func fleetMix(_ i: Int) -> Int {
    switch i % 20 {
    case 0..<12: return 0
    case 12..<15: return 1
    case 15..<19: return 2
    default: return 3
    }
}

/// Stream cycle `cycle` as cluster `i` samples it now (loop `loop`: a replayed deadlock is a new one).
func fleetCycle(_ cycle: CycleOutcome, cluster i: Int, loop: Int, at: Date) -> CycleOutcome {
    var copy = cycle
    copy.snapshot?.systemIdentifier = String(format: "fleet-%04d", i)
    copy.snapshot?.capturedAt = at
    copy.deadlocks = cycle.deadlocks.map { d in
        DeadlockEvent(eventKey: d.eventKey + "-\(loop)", database: d.database, detectedAt: d.detectedAt, sources: d.sources,
                      participants: d.participants, victimPid: d.victimPid, details: d.details)
    }
    return copy
}

/// CPU seconds (user + system) of these server processes so far.
func cpuSeconds(_ pids: [Int32]) -> Double {
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    return pids.reduce(0) { sum, pid in
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return sum }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After "pid (comm)": state is field 3, utime 14, stime 15 → indexes 11, 12 here.
        guard fields.count > 12, let u = Double(fields[11]), let s = Double(fields[12]) else { return sum }
        return sum + (u + s) / ticks
    }
}

final class LatencyBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Double] = []
    private var failures: [String] = []
    private var cycles = 0
    func add(_ v: [Double], _ f: [String], cycles n: Int) { lock.withLock { values += v; failures += f; cycles += n } }
    var all: ([Double], [String], Int) { lock.withLock { (values, failures, cycles) } }
}

/// A cluster's writer, kept from cycle to cycle as a daemon keeps it (with its vault connection).
final class FleetCluster: @unchecked Sendable {
    let writer: VaultWriter
    let stream: [CycleOutcome]
    init(writer: VaultWriter, stream: [CycleOutcome]) {
        self.writer = writer
        self.stream = stream
    }

    /// Hands `cycle` to the writer (its rows are built here, as the Monitor's are), and returns
    /// the write, timed: whether the vault was called, and why it failed.
    func write(_ cycle: CycleOutcome) -> (called: Bool, milliseconds: Double, failure: String?) {
        writer.add(cycle)
        let before = writer.statementsRun, began = ContinuousClock.now
        let failure = writer.flush()
        return (writer.statementsRun > before, ms(ContinuousClock.now - began), failure.map(\.message))
    }
}

/// Records the streams, then replays them: `clusters` threads, one vault connection and one
/// VaultWriter each, one cycle a second each, spread over the second. Prints one line of
/// `key=value` numbers for bench/fleet.sh. Latency is of the vault calls made (a cycle with
/// nothing to write makes none, as in the daemon); `calls_per_cycle` says how many cycles made one.
func fleet(workDB: String, vaultDB: String, clusters: Int, seconds: Double) async throws -> String {
    let streams = try await fleetRecord(workDB: workDB, vaultDB: vaultDB)
    let recorded = streams.map { "\($0.name): \($0.cycles.count) cycles" }.joined(separator: ", ")
    let settings = SessionSettings(applicationName: "lv-fleet", statementTimeoutMs: 30_000, lockTimeoutMs: 5_000, idleInTransactionSessionTimeoutMs: 0)
    var members: [FleetCluster] = []
    let quiet = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
    for i in 0..<clusters {
        let name = String(format: "db%04d", i)
        let context = RecordContext(clusterName: name, recordSource: "lockvault@bench/\(name)", decidedBy: "bench")
        let writer = VaultWriter(configuration: VaultWriter.Configuration(dsn: "dbname=\(vaultDB)", session: settings, context: context),
                                 logger: quiet)
        _ = try writer.vault()
        members.append(FleetCluster(writer: writer, stream: streams[fleetMix(i)].cycles))
    }
    let probe = try PostgresConnection(conninfo: "dbname=\(vaultDB)", settings: SessionSettings(applicationName: "lv-fleet-probe", statementTimeoutMs: 0, lockTimeoutMs: 0))
    defer { probe.close(); for m in members { m.writer.close() } }
    let pids = members.map(\.writer.backendPID)
    /// The WAL position, the bytes of every table (with its indexes) but the current partitions, and theirs.
    func sizes() throws -> (wal: String, bytes: Int64, current: Int64) {
        let r = try probe.query("""
            SELECT pg_current_wal_lsn()::text AS lsn,
                   coalesce(sum(pg_total_relation_size(c.oid)) FILTER (WHERE NOT c.current), 0)::int8 AS bytes,
                   coalesce(sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.current), 0)::int8 AS current
            FROM (SELECT c.oid, coalesce(pg_get_expr(c.relpartbound, c.oid) = 'FOR VALUES IN (NULL)', false) AS current
                  FROM pg_class c WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind = 'r') c
            """)[0]
        return (try r.decode("lsn"), try r.decode("bytes"), try r.decode("current"))
    }
    // Ending a row moves it out of its table's current partition (migration 030), which leaves a
    // dead row there. Autovacuum reclaims them after 1,000 (about once a minute at 200 clusters),
    // so the space is reused; a 60 s replay would count it as growth. The current partitions
    // are vacuumed before each size is read, and that VACUUM's WAL is counted.
    func vacuumCurrentRows() throws {
        for r in try probe.query("""
            SELECT c.relname::text AS t FROM pg_class c
            WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relispartition AND pg_get_expr(c.relpartbound, c.oid) = 'FOR VALUES IN (NULL)'
            """) {
            _ = try probe.execute("VACUUM lock_monitoring.\(try r.decode("t", as: String.self))")
        }
    }
    // Warm-up, outside the measurement: each cluster's writer writes its stream twice (every
    // record_* function planned and every partition opened once on its connection, as on a
    // running daemon's; the hubs exist), and then knows what the vault holds. Each cluster's stream is shifted back by up to a
    // minute (i % 60 s) so that the quiet clusters' heartbeats don't all fall in one second, as
    // daemons started at different times don't.
    let warm = LatencyBox()
    var workers: [Worker] = []
    for (i, member) in members.enumerated() {
        workers.append(Worker {
            var failures: [String] = []
            let n = member.stream.count, phase = Double(i % 60)
            for (k, c) in member.stream.enumerated() {
                if let f = member.write(fleetCycle(c, cluster: i, loop: 0, at: Date().addingTimeInterval(Double(k - 2 * n) - 1 - phase))).failure {
                    failures.append(f)
                }
            }
            for (k, c) in member.stream.enumerated() {
                if let f = member.write(fleetCycle(c, cluster: i, loop: 0, at: Date().addingTimeInterval(Double(k - n) - 1 - phase))).failure {
                    failures.append(f)
                }
            }
            warm.add([], failures, cycles: 0)
        })
    }
    for w in workers { w.join() }
    try vacuumCurrentRows()
    _ = try probe.query("CHECKPOINT")

    let before = try sizes()
    let cpuBefore = cpuSeconds(pids)
    let box = LatencyBox()
    let start = Date().addingTimeInterval(0.5)
    workers = []
    for (i, member) in members.enumerated() {
        let offset = Double(i) / Double(clusters)
        workers.append(Worker {
            var latencies: [Double] = [], failures: [String] = []
            var tick = 0
            while Double(tick) < seconds {
                let due = start.addingTimeInterval(Double(tick) + offset)
                let wait = due.timeIntervalSinceNow
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                // Each cluster at its own point of its stream: clusters are not in step.
                let k = (tick + 1 + i) % member.stream.count, loop = 1 + (tick + 1 + i) / member.stream.count
                let cycle = fleetCycle(member.stream[k], cluster: i, loop: loop, at: Date())
                let (called, milliseconds, failure) = member.write(cycle)
                if called { latencies.append(milliseconds) }
                if let failure { failures.append(failure) }
                tick += 1
            }
            box.add(latencies, failures, cycles: tick)
        })
    }
    for w in workers { w.join() }
    let elapsed = Date().timeIntervalSince(start)
    let cpu = cpuSeconds(pids) - cpuBefore
    try vacuumCurrentRows()
    let after = try sizes()
    let wal = try probe.query("SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::int8 AS d", [after.wal, before.wal])[0].decode("d", as: Int64.self)
    let (latencies, failures, cycles) = box.all
    let perClusterDay = 86_400 / elapsed / Double(clusters)
    var out = [("cycles", "\(cycles)"), ("writes", "\(latencies.count)"), ("failures", "\(failures.count + warm.all.1.count)"),
               ("seconds", fixed(elapsed, 1)), ("calls_per_cycle", fixed(Double(latencies.count) / Double(max(1, cycles)), 3)),
               ("p50", fixed(percentile(latencies, 0.5), 2)), ("p99", fixed(percentile(latencies, 0.99), 2)), ("max", fixed(latencies.max() ?? .nan, 2)),
               ("vault_cpu_cores", fixed(cpu / elapsed, 4)), ("cpu_pct_per_cluster", fixed(100 * cpu / elapsed / Double(clusters), 4)),
               ("cpu_ms_per_call", fixed(1000 * cpu / Double(max(1, latencies.count)), 2)),
               ("wal_mb_per_cluster_day", fixed(Double(wal) * perClusterDay / 1_048_576, 2)),
               ("size_mb_per_cluster_day", fixed(Double(after.bytes - before.bytes) * perClusterDay / 1_048_576, 2)),
               ("current_mb_before", fixed(Double(before.current) / 1_048_576, 2)), ("current_mb_after", fixed(Double(after.current) / 1_048_576, 2))]
    if let f = (failures + warm.all.1).first { out.append(("first_failure", String(f.prefix(200)))) }
    out.append(("recorded", recorded))
    return keyValueLines(out)
}

/// fleet_dashboard, read whole as `lockvault status` reads it (FleetStatusRow.read), `rounds`
/// times after one warm-up read. Prints `key value` lines for the fleet report.
func fleetDashboardQuery(vaultDB: String, rounds: Int) throws -> String {
    let conn = try PostgresConnection(conninfo: "dbname=\(vaultDB)", settings: SessionSettings(applicationName: "lv-bench-fleet-dashboard", statementTimeoutMs: 0, lockTimeoutMs: 0))
    defer { conn.close() }
    var rows = try FleetStatusRow.read(on: conn).count
    var times: [Double] = []
    for _ in 0..<rounds {
        let start = ContinuousClock.now
        rows = try FleetStatusRow.read(on: conn).count
        times.append(ms(ContinuousClock.now - start))
    }
    return keyValueLines([("rows", "\(rows)"), ("median", fixed(percentile(times, 0.5), 2)), ("p99", fixed(percentile(times, 0.99), 2))])
}

/// Retention as the daemon runs it (RetentionRun: the drop, sweep batches, VACUUM), as the
/// vault's owner. Prints `key value` lines for the fleet report.
func fleetRetention(vaultDB: String, days: Int) throws -> String {
    let conn = try PostgresConnection(conninfo: "dbname=\(vaultDB)", settings: SessionSettings(applicationName: "lv-bench-retention", statementTimeoutMs: 0, lockTimeoutMs: 0))
    defer { conn.close() }
    let run = try RetentionRun.run(days: days, on: conn)
    return keyValueLines([("rows", "\(run.rowsRemoved)"), ("partitions", "\(run.partitionsDropped)"), ("batches", "\(run.sweepBatches)"),
                          ("batch_size", "\(RetentionRun.sweepBatchSize)"), ("drop_ms", fixed(run.dropMilliseconds, 0)),
                          ("sweep_ms", fixed(run.sweepMilliseconds, 0)), ("longest_batch_ms", fixed(run.longestBatchMilliseconds, 0)),
                          ("vacuum_ms", fixed(run.vacuumMilliseconds, 0)), ("vacuumed", "\(run.vacuumed.count)"), ("not_vacuumed", "\(run.notVacuumed.count)")])
}
