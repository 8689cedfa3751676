// The fleet simulation (bench/fleet.sh, called from bench/run.sh): N synthetic clusters write
// into one vault at 1 Hz, concurrently, each on its own vault connection and through
// lockvault's own writer (CycleWriter: the document the daemon builds, record_cycle in its own
// transaction). Their cycle streams are real cycles, sampled by lockvault's Monitor from a work
// database where real sessions hold and wait for locks: quiet, a steady blocker, blockers
// coming and going, deadlocks. Each cluster replays one stream in a loop under its own
// system_identifier, with the sample time of the moment it writes.
//
//   lockvault-bench fleet-record --work-db DB --vault-db DB --out FILE     (the streams, JSON)
//   lockvault-bench fleet-replay --vault-db DB --streams FILE --clusters N --seconds S
import Foundation
import LockvaultCore
import LockvaultEngine
import Logging
import PostgresClient

/// One recorded stream: documents as the daemon would write them, in order.
struct FleetStream: Codable {
    var name: String
    var documents: [String]
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

func fleetRecord(workDB: String, vaultDB: String, out: String) async throws -> String {
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
    func sample(_ n: Int, every: Double = 0.2) async throws -> [String] {
        var docs: [String] = []
        for _ in 0..<n {
            let outcome = await monitor.runCycle(write: false)
            if let e = outcome.targetError { throw FleetError(message: e) }
            if let d = try CycleWriter.document(for: outcome, clusterName: "recorded", recordSource: "lockvault@bench/recorded") { docs.append(d) }
            pause(every)
        }
        return docs
    }
    _ = try await sample(2)   // baselines (deadlock counters)
    var streams: [FleetStream] = []
    streams.append(FleetStream(name: "quiet", documents: try await sample(10)))

    // A steady blocker: one session holds EXCLUSIVE on a table, one waits.
    let holder = try PostgresConnection(conninfo: "dbname=\(workDB)", settings: settings)
    try holder.execute("BEGIN")
    try holder.execute("LOCK TABLE fleet_t IN EXCLUSIVE MODE")
    let waiter = try PostgresConnection(conninfo: "dbname=\(workDB)", settings: settings)
    let waiterBox = Handoff(waiter)
    let w = Worker { _ = try? waiterBox.value.query("SELECT * FROM fleet_t FOR UPDATE") }
    try waiters(1)
    streams.append(FleetStream(name: "steady blocker", documents: try await sample(10)))
    try holder.execute("ROLLBACK")
    w.join()

    // Blockers coming and going: a new holder and waiter every 3 samples.
    var churn: [String] = []
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
    streams.append(FleetStream(name: "blockers coming and going", documents: churn))

    // Deadlocks: two sessions update two rows in opposite order, once every 5 samples.
    var deadlocks: [String] = []
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
    streams.append(FleetStream(name: "deadlocks", documents: deadlocks))
    setup.close()
    waiter.close(); holder.close()
    await monitor.close()
    try JSONEncoder().encode(streams).write(to: URL(fileURLWithPath: out))
    return streams.map { "\($0.name): \($0.documents.count) cycles" }.joined(separator: ", ")
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

/// The document of stream cycle `k` (loop `loop`) for cluster `sysid`, sampled now.
func fleetDocument(_ template: [String: Any], sysid: String, name: String, loop: Int, at: Date) throws -> String {
    var d = template
    d["system_identifier"] = sysid
    d["record_source"] = "lockvault@bench/\(name)"
    d["captured_at"] = PostgresTimestamp.format(at)
    if var summary = d["summary"] as? [String: Any] { summary["cluster_name"] = name; d["summary"] = summary }
    // A replayed deadlock is a new deadlock: its event key carries the loop.
    for family in ["deadlocks", "deadlock_participants"] {
        guard var rows = d[family] as? [[String: Any]] else { continue }
        for i in rows.indices {
            if var e = rows[i]["deadlock_event"] as? [String: Any], let key = e["event_key"] as? String {
                e["event_key"] = "\(key)-\(loop)"
                rows[i]["deadlock_event"] = e
            }
        }
        d[family] = rows
    }
    return String(decoding: try JSONSerialization.data(withJSONObject: d), as: UTF8.self)
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
    func add(_ v: [Double], _ f: [String]) { lock.withLock { values += v; failures += f } }
    var all: ([Double], [String]) { lock.withLock { (values, failures) } }
}

/// Replays the streams: `clusters` threads, one vault connection each, one write a second each,
/// spread over the second. Prints one line of `key=value` numbers for bench/fleet.sh.
func fleetReplay(vaultDB: String, streamsPath: String, clusters: Int, seconds: Double) throws -> String {
    let streams = try JSONDecoder().decode([FleetStream].self, from: Data(contentsOf: URL(fileURLWithPath: streamsPath)))
    let templates: [[[String: Any]]] = try streams.map { s in
        try s.documents.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }
    let settings = SessionSettings(applicationName: "lv-fleet", statementTimeoutMs: 30_000, lockTimeoutMs: 5_000, idleInTransactionSessionTimeoutMs: 0)
    var conns: [PostgresConnection] = []
    for _ in 0..<clusters { conns.append(try PostgresConnection(conninfo: "dbname=\(vaultDB)", settings: settings)) }
    let probe = try PostgresConnection(conninfo: "dbname=\(vaultDB)", settings: SessionSettings(applicationName: "lv-fleet-probe", statementTimeoutMs: 0, lockTimeoutMs: 0))
    defer { probe.close(); for c in conns { c.close() } }
    let pids = conns.map(\.backendPID)
    func sizes() throws -> (wal: String, bytes: Int64) {
        let r = try probe.query("""
            SELECT pg_current_wal_lsn()::text AS lsn, coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 AS bytes
            FROM pg_class c WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind = 'r'
            """)[0]
        return (try r.decode("lsn"), try r.decode("bytes"))
    }
    // One warm-up loop per cluster outside the measurement: each cluster's hubs exist once.
    let warm = LatencyBox()
    var workers: [Worker] = []
    for i in 0..<clusters {
        let box = Handoff((conns[i], templates[fleetMix(i)])), sysid = String(format: "fleet-%04d", i), name = String(format: "db%04d", i)
        workers.append(Worker {
            let (conn, stream) = box.value
            var failures: [String] = []
            for (k, t) in stream.enumerated() {
                do { try CycleWriter.record(try fleetDocument(t, sysid: sysid, name: name, loop: 0, at: Date().addingTimeInterval(Double(k - stream.count) - 1)), on: conn) }
                catch { failures.append("\(error)") }
            }
            warm.add([], failures)
        })
    }
    for w in workers { w.join() }
    _ = try probe.query("CHECKPOINT")

    let before = try sizes()
    let cpuBefore = cpuSeconds(pids)
    let box = LatencyBox()
    let start = Date().addingTimeInterval(0.5)
    workers = []
    for i in 0..<clusters {
        let handoff = Handoff((conns[i], templates[fleetMix(i)])), sysid = String(format: "fleet-%04d", i), name = String(format: "db%04d", i)
        let offset = Double(i) / Double(clusters)
        workers.append(Worker {
            let (conn, stream) = handoff.value
            var latencies: [Double] = [], failures: [String] = []
            var tick = 0
            while Double(tick) < seconds {
                let due = start.addingTimeInterval(Double(tick) + offset)
                let wait = due.timeIntervalSinceNow
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                let k = (tick + 1) % stream.count, loop = 1 + (tick + 1) / stream.count
                let began = ContinuousClock.now
                do {
                    try CycleWriter.record(try fleetDocument(stream[k], sysid: sysid, name: name, loop: loop, at: Date()), on: conn)
                    latencies.append(ms(ContinuousClock.now - began))
                } catch { failures.append("\(error)") }
                tick += 1
            }
            box.add(latencies, failures)
        })
    }
    for w in workers { w.join() }
    let elapsed = Date().timeIntervalSince(start)
    let cpu = cpuSeconds(pids) - cpuBefore
    let after = try sizes()
    let wal = try probe.query("SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::int8 AS d", [after.wal, before.wal])[0].decode("d", as: Int64.self)
    let (latencies, failures) = box.all
    let perClusterDay = 86_400 / elapsed / Double(clusters)
    var line = "writes=\(latencies.count) failures=\(failures.count + warm.all.1.count) seconds=\(String(format: "%.1f", elapsed))"
    line += " p50=\(String(format: "%.2f", percentile(latencies, 0.5))) p99=\(String(format: "%.2f", percentile(latencies, 0.99)))"
    line += " max=\(String(format: "%.2f", latencies.max() ?? .nan))"
    line += " vault_cpu_cores=\(String(format: "%.4f", cpu / elapsed))"
    line += " cpu_pct_per_cluster=\(String(format: "%.4f", 100 * cpu / elapsed / Double(clusters)))"
    line += " wal_mb_per_cluster_day=\(String(format: "%.2f", Double(wal) * perClusterDay / 1_048_576))"
    line += " size_mb_per_cluster_day=\(String(format: "%.2f", Double(after.bytes - before.bytes) * perClusterDay / 1_048_576))"
    if let f = (failures + warm.all.1).first { line += " first_failure=\"\(f.prefix(200).replacingOccurrences(of: "\"", with: "'"))\"" }
    return line
}

/// fleet_dashboard, read whole as `lockvault status` reads it (FleetStatusRow.read), `rounds`
/// times after one warm-up read. Prints one markdown table row.
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
    let p99 = percentile(times, 0.99)
    return "| `SELECT * FROM fleet_dashboard` (as `lockvault status`) | \(rows) | \(String(format: "%.2f", percentile(times, 0.5))) | \(String(format: "%.2f", p99)) | < 50 ms | \(p99 < 50 ? "met" : "MISSED") |"
}
