// The storm bench's report (bench/storm.sh measures, this computes): the five arms side by side,
// run in a shuffled order in every round, so that the machine's drift falls on all of them alike.
// Each arm's TPS is compared with the "off" run of its own round; the cost is the mean of those
// ratios with a 95 % confidence interval (Student's t). CPU is from /proc: the daemon's process and
// its server sessions (both clusters' when the vault is elsewhere), or the sampler's session.
import Foundation

struct StormRun {
    var round: Int
    var arm: String
    var tps: Double
    var wallSeconds: Double
    /// CPU seconds: the client process (daemon, or the sampler's psql) and its server sessions.
    var clientCPU: Double
    var serverCPU: Double
    var cycles: Int
    /// Cycles that read pg_locks (one lock-manager pass each).
    var passes: Int
}

/// bench/storm.sh's file: one line per arm and round, tab-separated: round, arm, TPS, the pgbench
/// window's clock times (start, end), CPU ticks of the client and of its server sessions over it,
/// the daemon's cycles and lock-manager passes in it.
func stormRuns(path: String, clk: Double) throws -> [StormRun] {
    var runs: [StormRun] = []
    for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") where !line.hasPrefix("#") {
        let f = line.split(separator: "\t").map(String.init)
        guard f.count == 9, let round = Int(f[0]), let tps = Double(f[2]), let t0 = Double(f[3]), let t1 = Double(f[4]),
              let c = Double(f[5]), let s = Double(f[6]), let cycles = Int(f[7]), let passes = Int(f[8]) else {
            throw BenchError("\(path): not a storm run: \(line)")
        }
        runs.append(StormRun(round: round, arm: f[1], tps: tps, wallSeconds: t1 - t0, clientCPU: c / clk, serverCPU: s / clk, cycles: cycles, passes: passes))
    }
    return runs
}

/// The worst case's paragraph: `readings` are the daemon's ticks, its sessions' ticks and the
/// clock, each before and after, then the cycles and lock-manager passes in the window.
func stormWorstCase(clk: Double, readings: [Double]) throws -> String {
    guard readings.count == 8 else { throw BenchError("storm-worst: 8 readings, got \(readings.count)") }
    let seconds = readings[5] - readings[4]
    let daemon = rounded(100 * (readings[1] - readings[0]) / clk / seconds, 2), sessions = rounded(100 * (readings[3] - readings[2]) / clk / seconds, 2)
    return """
        60 s, \(Int(readings[6])) cycles, \(Int(readings[7])) of them read pg_locks: the daemon \(fixed(daemon, 2)) % of a core, its server sessions
        \(fixed(sessions, 2)) % (target: together ≤ 0.5 %: \(verdict(daemon + sessions <= 0.5))).
        """
}

func stormReport(path: String, clk: Double) throws -> String {
    let runs = try stormRuns(path: path, clk: clk)
    let arms = ["off", "B", "wiki", "lockvault", "lockvault-remote", "lockvault-before"]
    let names = ["off": "off (no sampler)", "B": "B: `pid, pg_blocking_pids(pid)` of every Lock waiter, 1 Hz",
                 "wiki": "the PostgreSQL wiki's pg_locks self-join, 1 Hz", "lockvault": "lockvault, vault in the monitored cluster",
                 "lockvault-remote": "lockvault, vault in a second cluster",
                 "lockvault-before": "lockvault before (LOCKVAULT_STORM_BEFORE), vault in the monitored cluster"]
    let off = Dictionary(runs.filter { $0.arm == "off" }.map { ($0.round, $0.tps) }, uniquingKeysWith: { a, _ in a })
    var out = "| arm | rounds | TPS (mean) | TPS cost vs off, 95 % CI | client CPU, % of a core | its server sessions | together | lock-manager passes per cycle |\n"
    out += "|---|---:|---:|---:|---:|---:|---:|---:|\n"
    var cost: [String: (Double, Double)] = [:]
    var cpu: [String: Double] = [:]
    var passesPerCycle: [String: Double] = [:]
    for arm in arms {
        let mine = runs.filter { $0.arm == arm }
        guard !mine.isEmpty else { continue }
        let tps = mine.map(\.tps).reduce(0, +) / Double(mine.count)
        let ratios = mine.compactMap { r in off[r.round].map { 1 - r.tps / $0 } }.map { $0 * 100 }
        let (m, h) = meanCI(ratios)
        cost[arm] = (m, h)
        let wall = mine.map(\.wallSeconds).reduce(0, +)
        let client = 100 * mine.map(\.clientCPU).reduce(0, +) / wall, server = 100 * mine.map(\.serverCPU).reduce(0, +) / wall
        cpu[arm] = client + server
        let cycles = mine.map(\.cycles).reduce(0, +), passes = mine.map(\.passes).reduce(0, +)
        if cycles > 0 { passesPerCycle[arm] = Double(passes) / Double(cycles) }
        let costText = arm == "off" ? "—" : String(format: "%.2f %% (%.2f … %.2f)", m, m - h, m + h)
        let passText = arm.hasPrefix("lockvault") ? String(format: "%.3f (%d of %d cycles)", Double(passes) / Double(max(cycles, 1)), passes, cycles)
            : arm == "B" ? "one per waiter" : arm == "wiki" ? "1 (two pg_locks scans in one statement)" : "—"
        out += "| \(names[arm] ?? arm) | \(mine.count) | \(String(format: "%.0f", tps)) | \(costText) | \(String(format: "%.2f", client)) | \(String(format: "%.2f", server)) | \(String(format: "%.2f", client + server)) | \(passText) |\n"
    }
    out += "\n| target | measured | verdict |\n|---|---|---|\n"
    if let c = cpu["lockvault"] {
        out += "| CPU, daemon + its sessions, 100 hot clients (vault in the monitored cluster) ≤ 0.5 % of a core | \(String(format: "%.2f", c)) % | \(verdict(c <= 0.5)) |\n"
    }
    if let c = cpu["lockvault-remote"] {
        out += "| the same, vault in a second cluster (its session there included) | \(String(format: "%.2f", c)) % | \(verdict(c <= 0.5)) |\n"
    }
    for arm in ["lockvault", "lockvault-remote", "lockvault-before"] {
        guard let p = passesPerCycle[arm] else { continue }
        out += "| lock-manager passes per cycle ≤ 1 (\(arm)) | \(String(format: "%.3f", p)) | \(verdict(p <= 1)) |\n"
    }
    for arm in ["lockvault", "lockvault-remote"] {
        guard let (m, h) = cost[arm] else { continue }
        let b = cost["B"]?.0 ?? .nan
        let ok = m - h <= 0 || m <= b
        out += "| TPS cost, 100 hot clients (\(arm)): CI includes 0, or ≤ B's (\(String(format: "%.2f", b)) %) | \(String(format: "%.2f %% (%.2f … %.2f)", m, m - h, m + h)) | \(verdict(ok)) |\n"
    }
    return out
}
