// lockvault-bench: the measuring parts of bench/run.sh (which starts a private cluster, runs the
// daemon and pgbench, and writes docs/benchmarks.md). The measuring subcommands print markdown or
// `key value` lines; the report subcommands read the raw measurements a script left in its work
// folder (see Measurements) and print the report's markdown.
//
//   lockvault-bench snapshot [--smoke]
//   lockvault-bench latency --work-db DB --vault-db DB --blocking N --deadlocks N [--min-wait S]
//   lockvault-bench dashboards --vault-db DB --rounds N
//   lockvault-bench worstcase --db DB [--backends 200] [--waiters 10]   (holds the sampler's worst case until stdin closes)
//   lockvault-bench fleet-dashboard --vault-db DB --rounds N
//   lockvault-bench fleet --work-db DB --vault-db DB --clusters N --seconds S
//   lockvault-bench retention --vault-db DB --days N   (retention as the daemon runs it, timed)
//   lockvault-bench storm-report FILE --clk N   (bench/storm.sh's runs: the five arms side by side)
//   lockvault-bench storm-worst --clk N --readings "…"   (bench/storm.sh's worst-case window: CPU and verdict)
//   lockvault-bench scale-load --db DB [--backends 200] [--partitions 2000] [--wait-seconds 2]   (bench/scale.sh's load; commands on stdin)
//   lockvault-bench scale-report FILE --clk N   (bench/scale.sh's windows: each arm's cost against the locks held)
//   lockvault-bench run-report DIR      (bench/run.sh's measurements → docs/benchmarks.md)
//   lockvault-bench history-rates DIR   (part 3's daily rates per table, as psql -v arguments for bench/history.sql)
//   lockvault-bench fleet-report DIR    (bench/fleet.sh's measurements → the fleet section)
//   lockvault-bench t-quantile P DF     (Student's t: the P quantile for DF degrees of freedom)
import Foundation

let args = CommandLine.arguments
func option(_ name: String, _ fallback: String) -> String {
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return fallback }
    return args[i + 1]
}

switch args.dropFirst().first {
case "snapshot":
    print(try await snapshotCost(smoke: args.contains("--smoke")))
case "latency":
    print(try await detectionLatency(workDB: option("--work-db", "lv_work"), vaultDB: option("--vault-db", "lv_vault"),
                                     blockingTrials: Int(option("--blocking", "50"))!, deadlockTrials: Int(option("--deadlocks", "50"))!,
                                     minWait: Double(option("--min-wait", "0"))!))
case "worstcase":
    try await worstCaseLoad(db: option("--db", "lv_work"), backends: Int(option("--backends", "200"))!, waiters: Int(option("--waiters", "10"))!)
case "dashboards":
    print(try dashboardQueries(vaultDB: option("--vault-db", "lv_history"), rounds: Int(option("--rounds", "101"))!))
case "fleet-dashboard":
    print(try fleetDashboardQuery(vaultDB: option("--vault-db", "lv_fleet"), rounds: Int(option("--rounds", "101"))!))
case "fleet":
    print(try await fleet(workDB: option("--work-db", "lv_work"), vaultDB: option("--vault-db", "lv_fleet"),
                          clusters: Int(option("--clusters", "200"))!, seconds: Double(option("--seconds", "60"))!))
case "storm-report":
    print(try stormReport(path: args.count > 2 ? args[2] : "storm.tsv", clk: Double(option("--clk", "100"))!))
case "storm-worst":
    print(try stormWorstCase(clk: Double(option("--clk", "100"))!, readings: parseNumbers(option("--readings", ""), "--readings")))
case "scale-load":
    try await scaleLoad(db: option("--db", "lv_work"), backends: Int(option("--backends", "200"))!, partitions: Int(option("--partitions", "2000"))!,
                        waitSeconds: Double(option("--wait-seconds", "2"))!)
case "scale-report":
    print(try scaleReport(path: args.count > 2 ? args[2] : "scale.tsv", clk: Double(option("--clk", "100"))!))
case "run-report":
    print(try runReport(dir: args.count > 2 ? args[2] : "."))
case "history-rates":
    print(try HistoryRates(Measurements(dir: args.count > 2 ? args[2] : ".")).psqlArguments)
case "fleet-report":
    print(try fleetReport(dir: args.count > 2 ? args[2] : "."))
case "t-quantile":
    guard args.count > 3, let p = Double(args[2]), let df = Double(args[3]) else { exit(2) }
    print(String(format: "%.6f", studentTQuantile(p, df: df)))
case "retention":
    print(try fleetRetention(vaultDB: option("--vault-db", "lv_fleet"), days: Int(option("--days", "29"))!))
default:
    FileHandle.standardError.write(Data("usage: lockvault-bench snapshot|latency|dashboards|worstcase|fleet-dashboard|fleet|retention|storm-report|storm-worst|scale-load|scale-report|run-report|history-rates|fleet-report|t-quantile ...\n".utf8))
    exit(2)
}
