// The fleet replay (bench/fleet.sh): the recorded streams written by N clusters at 1 Hz into
// one vault, each through its own VaultWriter, and what that costs the vault.
import Foundation
import LockvaultCore
import LockvaultEngine
import Logging
import PostgresClient

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
    let probe = try FleetVaultProbe(vaultDB: vaultDB)
    defer { probe.conn.close(); for m in members { m.writer.close() } }
    let pids = members.map(\.writer.backendPID)
    let warmFailures = fleetWarmUp(members)
    try probe.vacuumCurrentRows()
    _ = try probe.conn.query("CHECKPOINT")

    let before = try probe.sizes()
    let cpuBefore = cpuSeconds(pids)
    let replay = fleetReplay(members, seconds: seconds)
    let cpu = cpuSeconds(pids) - cpuBefore
    try probe.vacuumCurrentRows()
    let after = try probe.sizes()
    let wal = try probe.walBytes(from: before.wal, to: after.wal)
    let (latencies, failures, cycles, elapsed) = (replay.latencies, replay.failures, replay.cycles, replay.elapsed)
    let perClusterDay = 86_400 / elapsed / Double(clusters)
    var out = [("cycles", "\(cycles)"), ("writes", "\(latencies.count)"), ("failures", "\(failures.count + warmFailures.count)"),
               ("seconds", fixed(elapsed, 1)), ("calls_per_cycle", fixed(Double(latencies.count) / Double(max(1, cycles)), 3)),
               ("p50", fixed(percentile(latencies, 0.5), 2)), ("p99", fixed(percentile(latencies, 0.99), 2)), ("max", fixed(latencies.max() ?? .nan, 2)),
               ("vault_cpu_cores", fixed(cpu / elapsed, 4)), ("cpu_pct_per_cluster", fixed(100 * cpu / elapsed / Double(clusters), 4)),
               ("cpu_ms_per_call", fixed(1000 * cpu / Double(max(1, latencies.count)), 2)),
               ("wal_mb_per_cluster_day", fixed(Double(wal) * perClusterDay / 1_048_576, 2)),
               ("size_mb_per_cluster_day", fixed(Double(after.bytes - before.bytes) * perClusterDay / 1_048_576, 2)),
               ("current_mb_before", fixed(Double(before.current) / 1_048_576, 2)), ("current_mb_after", fixed(Double(after.current) / 1_048_576, 2))]
    if let f = (failures + warmFailures).first { out.append(("first_failure", String(f.prefix(200)))) }
    out.append(("recorded", recorded))
    return keyValueLines(out)
}

/// The vault as the fleet bench reads it, on a connection of its own (not one of the clusters').
struct FleetVaultProbe {
    let conn: PostgresConnection

    init(vaultDB: String) throws {
        conn = try PostgresConnection(conninfo: "dbname=\(vaultDB)", settings: SessionSettings(applicationName: "lv-fleet-probe", statementTimeoutMs: 0, lockTimeoutMs: 0))
    }

    /// The WAL position, the bytes of every table (with its indexes) but the current partitions, and theirs.
    func sizes() throws -> (wal: String, bytes: Int64, current: Int64) {
        let r = try conn.query("""
            SELECT pg_current_wal_lsn()::text AS lsn,
                   coalesce(sum(pg_total_relation_size(c.oid)) FILTER (WHERE NOT c.current), 0)::int8 AS bytes,
                   coalesce(sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.current), 0)::int8 AS current
            FROM (SELECT c.oid, coalesce(pg_get_expr(c.relpartbound, c.oid) = 'FOR VALUES IN (NULL)', false) AS current
                  FROM pg_class c WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind = 'r') c
            """)[0]
        return (try r.decode("lsn"), try r.decode("bytes"), try r.decode("current"))
    }

    func walBytes(from: String, to: String) throws -> Int64 {
        try conn.query("SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::int8 AS d", [to, from])[0].decode("d", as: Int64.self)
    }

    /// Ending a row moves it out of its table's current partition (migration 030), which leaves a
    /// dead row there. Autovacuum reclaims them after 1,000 (about once a minute at 200 clusters),
    /// so the space is reused; a 60 s replay would count it as growth. The current partitions
    /// are vacuumed before each size is read, and that VACUUM's WAL is counted.
    func vacuumCurrentRows() throws {
        for r in try conn.query("""
            SELECT c.relname::text AS t FROM pg_class c
            WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relispartition AND pg_get_expr(c.relpartbound, c.oid) = 'FOR VALUES IN (NULL)'
            """) {
            _ = try conn.execute("VACUUM lock_monitoring.\(try r.decode("t", as: String.self))")
        }
    }
}

/// Warm-up, outside the measurement: each cluster's writer writes its stream twice (every
/// record_* function planned and every partition opened once on its connection, as on a
/// running daemon's; the hubs exist), and then knows what the vault holds. Each cluster's stream
/// is shifted back by up to a minute (i % 60 s) so that the quiet clusters' heartbeats don't all
/// fall in one second, as daemons started at different times don't. Returns the failures.
func fleetWarmUp(_ members: [FleetCluster]) -> [String] {
    let warm = LatencyBox()
    var workers: [Worker] = []
    for (i, member) in members.enumerated() {
        workers.append(Worker {
            var failures: [String] = []
            let n = member.stream.count, phase = Double(i % 60)
            for pass in [2, 1] {
                for (k, c) in member.stream.enumerated() {
                    if let f = member.write(fleetCycle(c, cluster: i, loop: 0, at: Date().addingTimeInterval(Double(k - pass * n) - 1 - phase))).failure {
                        failures.append(f)
                    }
                }
            }
            warm.add([], failures, cycles: 0)
        })
    }
    for w in workers { w.join() }
    return warm.all.1
}

/// The measurement: every cluster writes one cycle a second for `seconds`, the clusters spread
/// over the second and each at its own point of its stream (clusters are not in step).
func fleetReplay(_ members: [FleetCluster], seconds: Double) -> (latencies: [Double], failures: [String], cycles: Int, elapsed: Double) {
    let box = LatencyBox()
    let start = Date().addingTimeInterval(0.5)
    var workers: [Worker] = []
    for (i, member) in members.enumerated() {
        let offset = Double(i) / Double(members.count)
        workers.append(Worker {
            var latencies: [Double] = [], failures: [String] = []
            var tick = 0
            while Double(tick) < seconds {
                let wait = start.addingTimeInterval(Double(tick) + offset).timeIntervalSinceNow
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                let k = (tick + 1 + i) % member.stream.count, loop = 1 + (tick + 1 + i) / member.stream.count
                let (called, milliseconds, failure) = member.write(fleetCycle(member.stream[k], cluster: i, loop: loop, at: Date()))
                if called { latencies.append(milliseconds) }
                if let failure { failures.append(failure) }
                tick += 1
            }
            box.add(latencies, failures, cycles: tick)
        })
    }
    for w in workers { w.join() }
    let (latencies, failures, cycles) = box.all
    return (latencies, failures, cycles, Date().timeIntervalSince(start))
}
