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
    let monitorSettings = MonitorSettings(clusterName: "recorded",
                                   sampling: SamplingSettings(targetDSN: "dbname=\(workDB)", session: SessionSettings(applicationName: "lockvault")),
                                   vault: VaultSettings(dsn: "dbname=\(vaultDB)"),
                                   severity: SeverityPolicy(mediumAfterSeconds: 1, highAfterSeconds: 3, criticalAfterSeconds: 6))
    let monitor = Monitor(settings: monitorSettings, logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() })
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
