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

func stormReport(path: String) throws -> String {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    var runs: [StormRun] = []
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        let f = line.split(separator: "\t").map(String.init)
        guard f.count == 8, let round = Int(f[0]), let tps = Double(f[2]), let wall = Double(f[3]), let c = Double(f[4]), let s = Double(f[5]),
              let cycles = Int(f[6]), let passes = Int(f[7]) else { continue }
        runs.append(StormRun(round: round, arm: f[1], tps: tps, wallSeconds: wall, clientCPU: c, serverCPU: s, cycles: cycles, passes: passes))
    }
    let arms = ["off", "B", "wiki", "lockvault", "lockvault-remote"]
    let names = ["off": "off (no sampler)", "B": "B: `pid, pg_blocking_pids(pid)` of every Lock waiter, 1 Hz",
                 "wiki": "the PostgreSQL wiki's pg_locks self-join, 1 Hz", "lockvault": "lockvault, vault in the monitored cluster",
                 "lockvault-remote": "lockvault, vault in a second cluster"]
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
    func verdict(_ ok: Bool) -> String { ok ? "met" : "MISSED" }
    out += "\n| target | measured | verdict |\n|---|---|---|\n"
    if let c = cpu["lockvault"] {
        out += "| CPU, daemon + its sessions, 100 hot clients (vault in the monitored cluster) ≤ 0.5 % of a core | \(String(format: "%.2f", c)) % | \(verdict(c <= 0.5)) |\n"
    }
    if let c = cpu["lockvault-remote"] {
        out += "| the same, vault in a second cluster (its session there included) | \(String(format: "%.2f", c)) % | \(verdict(c <= 0.5)) |\n"
    }
    for arm in ["lockvault", "lockvault-remote"] {
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
