// Parts 3, 5 and 6 of bench/run.sh's report: the vault's growth and WAL over the daemon's windows
// (quiet, steady blocker, worst case, blockers coming and going), the daily rates that part 5's
// synthetic history is generated at, and the daemon's footprint over parts 3 and 4.
import Foundation

/// One window of the daemon's run: what the vault and the WAL gained, and the cycles in it.
struct StorageWindow {
    let name: String
    let seconds: Double          // rounded to 0.1 s, as shown, and used so in the rates
    let bytes: Int, wal: Double, cycles: Int
    let added: [(table: String, added: Double)]

    init(_ m: Measurements, _ name: String) throws {
        let b = try m.string("window.\(name).begin").split(separator: " ").map(String.init)
        let e = try m.string("window.\(name).end").split(separator: " ").map(String.init)
        guard b.count == 4, e.count == 4 else { throw BenchError("window \(name): \(b) \(e)") }   // bytes, LSN, cycles, clock
        self.name = name
        seconds = rounded(try number(e[3], name) - number(b[3], name), 1)
        bytes = Int(try number(e[0], name) - number(b[0], name))
        wal = try walBytes(from: b[1], to: e[1])
        cycles = Int(try number(e[2], name) - number(b[2], name))
        added = try m.rowDeltas("rows-\(name)-0", "rows-\(name)-1")
    }
}

/// Bytes a row takes per table (rows > 0), from the vault as part 3 left it.
func rowBytes(_ m: Measurements) throws -> [String: Double] {
    let rows = Dictionary(try m.table("rows-final").map { ($0.name, $0.value) }, uniquingKeysWith: { x, _ in x })
    var out: [String: Double] = [:]
    for (table, bytes) in try m.table("table-bytes") {
        if let n = rows[table], n > 0 { out[table] = rounded(bytes / n, 1) }
    }
    return out
}

/// Part 3's coming-and-going window as daily rates, and what part 5's history makes of them: the
/// same rates, scaled down when HISTORY_DAYS of them would be more than HISTORY_CAP rows.
struct HistoryRates {
    let seconds: Double, days: Double
    let perTable: [(table: String, added: Double)]
    let measuredTotal: Double, scale: Double

    init(_ m: Measurements) throws {
        let seconds = try StorageWindow(m, "change").seconds, days = try m.double("HISTORY_DAYS"), cap = try m.double("HISTORY_CAP")
        let perTable = try m.rowDeltas("rows-before", "rows-after")
        let total = rounded(perTable.map { $0.added / seconds * 86_400 * days }.reduce(0, +), 0)
        (self.seconds, self.days, self.perTable, measuredTotal) = (seconds, days, perTable, total)
        scale = rounded(total > cap ? cap / total : 1, 4)
    }
    /// psql variables for bench/history.sql: rows a day per table.
    var psqlArguments: String {
        perTable.map { "-v \($0.table)=\(fixed($0.added / seconds * 86_400 * scale, 0))" }.joined(separator: " ")
    }
}

func storageSection(_ m: Measurements) throws -> String {
    let windows = try ["quiet", "steady", "worst", "change"].map { try StorageWindow(m, $0) }
    let perRow = try rowBytes(m)
    var storageRows: [String] = [], callRows: [String] = [], estimated: [String: Double] = [:]
    for w in windows {
        let est = rounded(w.added.map { $0.added * (perRow[$0.table] ?? 0) }.reduce(0, +), 0)
        estimated[w.name] = est
        let perDay = rounded(est / w.seconds * 86_400 / 1_048_576, 2)
        let walPerCycle = rounded(w.cycles > 0 ? w.wal / Double(w.cycles) : 0, 0)
        let added = Int(w.added.map(\.added).reduce(0, +))
        storageRows.append("| \(w.name) | \(fixed(w.seconds, 1)) | \(w.cycles) | \(added) | \(w.bytes) | \(fixed(est, 0)) | \(fixed(perDay, 2)) | \(verdict(perDay < 20)) | \(fixed(w.wal, 0)) | \(fixed(walPerCycle, 0)) | \(fixed(100 * walPerCycle / (29 * 1024), 1)) % |")
        // The vault's cost per cycle: a steady cycle calls record_cycle() only for the heartbeat,
        // one call a minute (one more for a window that straddles two).
        let rc = try recordCycleDelta(m, w.name), c = Double(max(w.cycles, 0))
        let perCycle = (calls: w.cycles > 0 ? Double(rc.calls) / c : 0, ms: w.cycles > 0 ? rc.ms / c : 0)
        let allowed = Int(w.seconds / 60) + 1
        let (target, ok) = w.name == "change" ? ("—", "(changes every few cycles)") : ("≤ \(allowed) calls (heartbeat)", verdict(rc.calls <= allowed))
        callRows.append("| \(w.name) | \(fixed(w.seconds, 1)) | \(w.cycles) | \(rc.calls) | \(fixed(perCycle.calls, 3)) | \(fixed(rc.ms, 1)) | \(fixed(perCycle.ms, 3)) | \(target) | \(ok) |")
    }
    let hbRow = try m.double("hb_row")
    let rates = try HistoryRates(m), change = windows[3]
    let growthRows = rates.perTable.filter { $0.added != 0 }
        .map { "| \($0.table) | \(Int($0.added)) | \(fixed($0.added / rates.seconds * 86_400, 0)) |" }
    let episodes = Double(try m.int("LAT_BLOCKING") + m.int("LAT_DEADLOCKS"))
    let bytesPerEpisode = rounded(estimated["change"]! / episodes, 0), walPerEpisode = rounded(change.wal / episodes, 0)
    return """
        ## 3. Storage growth and WAL per cycle

        Vault bytes, measured: the change in the sum of `pg_total_relation_size` over the `lock_monitoring` tables (with
        indexes and TOAST) — page-granular, so a 60-second window shows 0, 8192 or 16384. Estimated: rows added to each
        table × that table's bytes per row (its total size less index metapages / its rows, at the end of part 3); MB/day and
        verdict extrapolate the estimate to a day. WAL: `pg_current_wal_lsn()` delta over the window — the whole
        cluster's WAL, so it also counts autovacuum and checkpoints (the script vacuums and checkpoints before the first
        window so that there is little left for them); the workloads themselves write none (they take no transaction id). Cycles: the daemon's own count. Windows: a quiet cluster (nothing but the daemon); a steady
        blocker (an active session holding EXCLUSIVE on a table, one waiter, measured from 12 s to \(12 + (try m.int("STEADY_S"))) s after it
        began, when nothing about it changes); the worst case (2c's window, below), steady; blockers coming and going (part 4's trials).

        | window | seconds | cycles | vault rows added | vault bytes, measured | vault bytes, estimated | MB/day at this rate | < 20 MB/day | WAL bytes | WAL bytes per cycle | of pg_ash's 29 KiB per sample |
        |---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|
        \(storageRows.joined(separator: "\n"))

        When nothing changes, what lockvault writes is the heartbeat: one `monitor_cycle_s` row a minute (~\(Int(hbRow)) bytes
        + line pointer + primary-key entry, ~\(fixed((hbRow + 4 + 56) * 1440 / 1_048_576, 2)) MB/day), and the WAL per cycle is that row and its predecessor's
        end date spread over 60 cycles, plus whatever autovacuum and checkpoints wrote in the window.

        Coming and going: \(Int(episodes)) episodes (blocking situations and deadlocks) in \(fixed(rates.seconds, 1)) s, i.e. \(fixed(episodes / rates.seconds * 86_400, 0)) a day
        at this rate — far more than a healthy cluster. Per episode: \(fixed(bytesPerEpisode, 0)) vault bytes, \(fixed(walPerEpisode, 0)) WAL bytes, so 20 MB/day
        holds about \(fixed(bytesPerEpisode > 0 ? 20 * 1_048_576 / bytesPerEpisode : 0, 0)) such episodes a day. Rows added in that window, and per day at that rate:

        | table | rows added | rows/day at this rate |
        |---|---:|---:|
        \(growthRows.joined(separator: "\n"))

        | per blocking episode (coming and going) | measured | target | |
        |---|---:|---:|---|
        | vault bytes | \(fixed(bytesPerEpisode, 0)) | ≤ 3072 | \(verdict(bytesPerEpisode <= 3072)) |
        | WAL bytes | \(fixed(walPerEpisode, 0)) | ≤ 5120 | \(verdict(walPerEpisode <= 5120)) |

        ### The vault's cost per cycle

        The daemon sends only what changed since its last successful write (LockvaultCore `VaultChanges`): a cycle in
        which nothing changed makes no call to the vault, except for the once-a-minute heartbeat of `monitor_cycle_s`.
        Counted from `pg_stat_user_functions` (`track_functions = pl` on the vault database), so a window may be off by
        the one call a session had not reported yet. The worst case is 2c's window: 150 sessions idle in transaction holding
        ACCESS SHARE on 20 tables each, 40 idle, a row blocker with 10 waiters (\(try m.string("worst_locks")) locks in the cluster), from 10 s
        after the daemon started, for \(try m.string("CPU_S")) s.

        | window | seconds | cycles | record_cycle calls | calls per cycle | record_cycle ms | ms per cycle | target | |
        |---|---:|---:|---:|---:|---:|---:|---|---|
        \(callRows.joined(separator: "\n"))


        """
}

func historySection(_ m: Measurements) throws -> String {
    let rates = try HistoryRates(m), days = try m.string("HISTORY_DAYS")
    let episodes = Double(try m.int("LAT_BLOCKING") + m.int("LAT_DEADLOCKS"))
    let perDay = rounded(episodes / rates.seconds * 86_400, 0)
    let volume = rates.scale == 1 ? "rows at the daily volume measured in part 3's coming-and-going window (rows/day per table above), shaped like" : """
        rows at \(fixed(100 * rates.scale, 1)) % of the daily volume measured in part 3's coming-and-going window (rows/day per table above:
        \(fixed(rates.measuredTotal, 0)) rows over \(days) days at 100 %, more than this machine generates inside the 20-minute budget; that rate is
        \(fixed(perDay, 0)) episodes a day, so this is still \(fixed(rates.scale * perDay, 0)) a day), shaped like
        """
    let rows = try m.table("rows-history").filter { $0.value > 0 }.map { "\($0.name) \(Int($0.value))" }.joined(separator: ", ")
    return """
        ## 5. Dashboard queries over \(days) days of history

        A separate vault (`lv_history`, migrated by `lockvault migrate`) filled by `bench/history.sql` with \(days) days of
        \(volume)
        the daemon's: hubs with SHA-256 keys, closed satellite rows spread over the period, a few current ones;
        deadlock events, analysis buckets and resolve decisions never close. Generated in \(try m.string("t_hist")) s: \(rows) rows;
        \(try m.string("history_bytes")); \(try m.string("analysis_buckets")) analysis buckets an hour (distinct waited-for targets in part 3). Each query up to \(try m.string("DASH_ROUNDS")) times (at most ~30 s in all), interleaved.

        \(try m.text("dashboards.md"))

        """
}

func footprintSection(_ m: Measurements) throws -> String {
    let b = try m.numbers("footprint.begin"), e = try m.numbers("footprint.end")   // ticks, session ticks, clock, RSS kB
    guard b.count == 4, e.count == 4 else { throw BenchError("footprint: \(b) \(e)") }
    let clk = try m.double("clk"), seconds = rounded(e[2] - b[2], 0)
    let rssMax = try m.text("rss.log").split(separator: "\n").compactMap { Double($0) }.max() ?? 0
    let times = try m.cycleTimes("footprint-daemon.log")
    func mib(_ kb: Double) -> Int { Int(kb) / 1024 }
    return """
        ## 6. Daemon footprint

        Over the \(fixed(seconds, 0)) s of parts 3 and 4 (quiet, steady blocker, coming and going) — not the 10 minutes the issue asks
        for, which the 20-minute budget can't hold on its own.

        | measure | value |
        |---|---:|
        | RSS at start / end / max (VmRSS) | \(mib(b[3])) / \(mib(e[3])) / \(mib(rssMax)) MiB |
        | daemon CPU (utime+stime), % of one core | \(fixed(corePercent(ticks: e[0] - b[0], clk: clk, seconds: seconds), 2)) % |
        | lockvault's server sessions' CPU, % of one core | \(fixed(corePercent(ticks: e[1] - b[1], clk: clk, seconds: seconds), 2)) % |
        | cycle time (daemon's own measure) | \(fixed(lowerMedian(times), 1)) ms median, \(fixed(nearestRank(times, 0.99), 1)) ms p99 over \(times.count) cycles |

        """
}
