// bench/scale.sh's report (the script measures, this computes): each arm's CPU and memory against
// the locks the cluster holds. The arms ran side by side, shuffled within each stage, so the
// machine's drift falls on all of them alike. CPU is from /proc (schedstat's run time): the client
// process (lockvault, or the sampler's psql) and its server sessions; RSS is VmRSS at the end of
// the window.
import Foundation

struct ScaleRun: Equatable {
    var locksPerBackend: Int
    var waitsPerSecond: Double
    var arm: String
    var wallSeconds: Double
    var clientCPU: Double
    var serverCPU: Double
    var clientRSSKiB: Int
    var serverRSSKiB: Int
    /// `count(*) FROM pg_locks` at the start of the window.
    var locksInUse: Int

    /// Client and server CPU, % of one core.
    var cpuPercent: Double { wallSeconds > 0 ? 100 * (clientCPU + serverCPU) / wallSeconds : .nan }
}

/// The script's file: one tab-separated line per window: locks per backend, new waits a second,
/// arm, clock before and after, client CPU and its server sessions' CPU (in units of which `clk`
/// make a second: nanoseconds from schedstat), client RSS (KiB), its server sessions' RSS (KiB),
/// locks in pg_locks.
func scaleRuns(path: String, clk: Double) throws -> [ScaleRun] {
    var runs: [ScaleRun] = []
    for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") where !line.hasPrefix("#") {
        let f = line.split(separator: "\t").map(String.init)
        guard f.count == 10, let locks = Int(f[0]), let waits = Double(f[1]), let t0 = Double(f[3]), let t1 = Double(f[4]),
              let c = Double(f[5]), let s = Double(f[6]), let crss = Int(f[7]), let srss = Int(f[8]), let inUse = Int(f[9]) else {
            throw BenchError("\(path): not a scale run: \(line)")
        }
        runs.append(ScaleRun(locksPerBackend: locks, waitsPerSecond: waits, arm: f[2], wallSeconds: t1 - t0, clientCPU: c / clk,
                             serverCPU: s / clk, clientRSSKiB: crss, serverRSSKiB: srss, locksInUse: inUse))
    }
    return runs
}

/// A figure, or a dash where there is none (an arm that did not run, a ratio over nothing).
func cell(_ x: Double, _ digits: Int) -> String { x.isFinite ? fixed(x, digits) : "—" }

func scaleReport(path: String, clk: Double) throws -> String {
    let runs = try scaleRuns(path: path, clk: clk)
    let arms = ["off", "B", "L", "lockvault"]
    let stages = Array(Set(runs.map { [Double($0.locksPerBackend), $0.waitsPerSecond] })).sorted { ($0[1], $0[0]) < ($1[1], $1[0]) }
    func pooled(_ rs: [ScaleRun]) -> Double {
        let wall = rs.map(\.wallSeconds).reduce(0, +)
        return wall > 0 ? 100 * rs.map { $0.clientCPU + $0.serverCPU }.reduce(0, +) / wall : .nan
    }
    var out = "| locks per backend | locks in pg_locks | new waits/s | off | B | L | lockvault | lockvault ÷ B | lockvault RSS, MiB | its sessions' RSS, MiB |\n"
    out += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    var lockvaultCPU: [Double: [Int: Double]] = [:], bCPU: [Double: [Int: Double]] = [:]
    for stage in stages {
        let mine = runs.filter { Double($0.locksPerBackend) == stage[0] && $0.waitsPerSecond == stage[1] }
        let cpu = Dictionary(uniqueKeysWithValues: arms.map { arm in (arm, pooled(mine.filter { $0.arm == arm })) })
        let lv = mine.filter { $0.arm == "lockvault" }
        let inUse = mine.map(\.locksInUse).max() ?? 0
        let ratio = (cpu["lockvault"] ?? .nan) / (cpu["B"] ?? .nan)
        // Only what was measured: a stage a run did not finish has no figure to compare.
        if let c = cpu["lockvault"], c.isFinite { lockvaultCPU[stage[1], default: [:]][Int(stage[0])] = c }
        if let c = cpu["B"], c.isFinite { bCPU[stage[1], default: [:]][Int(stage[0])] = c }
        let rss = lv.map(\.clientRSSKiB).max().map { fixed(Double($0) / 1024, 1) } ?? "—"
        let srss = lv.map(\.serverRSSKiB).max().map { fixed(Double($0) / 1024, 1) } ?? "—"
        out += "| \(Int(stage[0])) | \(inUse) | \(fixed(stage[1], 0)) | " + arms.map { cell(cpu[$0] ?? .nan, 2) }.joined(separator: " | ")
            + " | \(ratio.isFinite ? cell(ratio, 2) + "×" : "—") | \(rss) | \(srss) |\n"
    }
    out += "\nCPU: % of one core, the client process and its server sessions together, over the arm's windows.\n"
    out += "\n| target | measured | verdict |\n|---|---|---|\n"
    for waits in lockvaultCPU.keys.sorted() {
        let lv = lockvaultCPU[waits] ?? [:], b = bCPU[waits] ?? [:]
        guard let top = lv.keys.max(), let bottom = lv.keys.min(), let atTop = lv[top], let bAtTop = b[top] else { continue }
        let vsB = atTop / bAtTop
        out += "| lockvault ≤ 1.5 × B at \(top) locks per backend, \(fixed(waits, 0)) new waits/s | \(vsB.isFinite ? cell(vsB, 2) + "×" : "B measured 0") | \(vsB.isFinite ? verdict(vsB <= 1.5) : "not measurable") |\n"
        if top != bottom, let atBottom = lv[bottom] {
            let flat = atTop / atBottom
            out += "| lockvault flat from \(bottom) to \(top) locks per backend (within 1.5×), \(fixed(waits, 0)) new waits/s | \(flat.isFinite ? cell(flat, 2) + "×" : "0 at \(bottom)") | \(flat.isFinite ? verdict(flat <= 1.5) : "not measurable") |\n"
        }
    }
    return out
}
