// The fleet part of the report (section 7 of docs/benchmarks.md), from what bench/fleet.sh left in
// its work folder: its own measurements (psql's readings of the vault, the DELETE reference), and
// the `key value` output of the fleet, fleet-dashboard and retention subcommands.
import Foundation

func fleetReport(dir: String) throws -> String {
    let m = try Measurements(dir: dir), r = try Measurements(dir: dir, file: "replay")
    return [try fleetWritesSection(m, r), try fleetHistorySection(m, r, try Measurements(dir: dir, file: "fleet-dashboard")),
            try fleetRetentionSection(m, try Measurements(dir: dir, file: "retention"))].joined(separator: "\n")
}

/// The replay: write latency, the vault's CPU, WAL and size per cluster-day, one core's capacity.
func fleetWritesSection(_ m: Measurements, _ r: Measurements) throws -> String {
    let clusters = try m.int("clusters"), days = try m.int("days"), cores = try r.double("vault_cpu_cores")
    let capacity = cores > 0 ? fixed(Double(clusters) / cores, 0) : "n/a"
    return """
        ## 7. Fleet: one vault, \(clusters) clusters

        `bench/fleet.sh` (\(try m.string("t_total")) s; the vault: \(try m.string("vault_server"))). \(clusters) synthetic clusters write into one vault (`lv_fleet`, on the benchmark cluster) at 1 Hz,
        concurrently: one thread each, each cycle spread over the second, through the daemon's own `VaultWriter` (its own
        vault connection; the cycle's rows built as the daemon builds them, only what changed since the cluster's last
        successful write sent, `record_cycle` in its own transaction; a cycle where nothing changed and no 60 s heartbeat
        is due makes no vault call at all). The cycle streams are
        real cycles sampled by lockvault's Monitor from `lv_fleet_work` where real sessions held and waited for locks
        (\(try r.string("recorded"))); each cluster replays one under its own system_identifier, sampled now: of every 20 clusters, 12 quiet,
        3 with a steady blocker, 4 with blockers coming and going, 1 with deadlocks (a replayed deadlock is a new one).
        Replayed sessions are the recorded ones, so hubs are created in a warm-up, not measured: each cluster's writer
        writes its stream twice (every writer function planned and every partition opened once on its connection, as on a
        running daemon's), after which it knows what the vault holds; each cluster's
        stream is shifted back by up to a minute so that heartbeats spread over the minute. Hubs are reused after, so the
        numbers are the steady-state writes of satellites and links, a little below a real fleet's.
        Measured over \(try r.string("seconds")) s: \(try r.string("cycles")) cycles, of which \(try r.string("writes")) made a vault call (\(fixed(100 * (try r.double("calls_per_cycle")), 1)) %), \(try r.string("failures")) failed\(r.optional("first_failure").map { " (first: \($0))" } ?? "").
        Latency is of the writer's flush when it called the vault (a cycle that makes no call costs nothing and is not
        counted), from the call to its commit's answer; building the cycle's rows comes before it, as in the daemon. The vault holds a partition a day for the \(days) days before the replay, as after \(days) days of running
        (created first; the history is copied into them below). The current rows are in a partition of their own (migration
        030), so a current row's read or end-dating opens that one, not every day's. WAL and size are read before and after
        the replay, each time after a VACUUM of the current partitions: ending a row moves it out of there and leaves a dead
        row, which autovacuum reclaims after 1,000 (about once a minute at this rate), so the space is reused. Size per
        cluster-day is of the history; the current partitions are shown apart: their files keep the size they reached, which
        in a 60 s window is a one-off, not a rate.

        | measure | value | target | |
        |---|---:|---:|---|
        | vault write latency per call, p50 | \(try r.string("p50")) ms | | |
        | vault write latency per call, p99 | \(try r.string("p99")) ms | ≤ 50 ms | \(verdict(try r.double("p99") <= 50)) |
        | vault write latency, max | \(try r.string("max")) ms | | |
        | vault calls per cycle | \(try r.string("calls_per_cycle")) | | |
        | vault CPU per call | \(try r.string("cpu_ms_per_call")) ms | | |
        | vault CPU, the \(clusters) writing backends | \(fixed(100 * cores, 1)) % of one core | | |
        | vault CPU per cluster | \(try r.string("cpu_pct_per_cluster")) % of one core | | |
        | WAL per cluster-day | \(try r.string("wal_mb_per_cluster_day")) MB | | |
        | vault size per cluster-day (the history; the current partitions apart) | \(try r.string("size_mb_per_cluster_day")) MB | | |
        | the current partitions, before → after the replay | \(try r.string("current_mb_before")) → \(try r.string("current_mb_after")) MB (all clusters; they hold the current rows and the dead rows between vacuums, and don't grow with the history) | | |

        **Capacity of one vault core: about \(capacity) clusters** of this mix at 1 Hz (\(clusters) clusters took \(fixed(cores, 2))
        of a core in their backends; WAL writer, checkpointer and autovacuum come on top). A bigger fleet needs, per
        \(capacity) clusters, another core on the vault; WAL and size grow linearly per cluster-day (above). Past a few
        cores of one server, split the fleet over several vaults (by team or region): nothing in lockvault needs
        one vault to see all clusters.

        """
}

/// DAYS of history copied from the replay, and every dashboard timed over it.
func fleetHistorySection(_ m: Measurements, _ r: Measurements, _ dash: Measurements) throws -> String {
    let clusters = try m.int("clusters"), days = try m.int("days")
    return """
        ### \(days) days of fleet history

        The replay's rows copied \(try m.string("copies")) times back over \(days) days (`bench/fleet-history.sql`, \(try m.string("t_hist")) s): \(try m.string("history_rows")) rows,
        \(try m.string("history_size")), \(try m.string("partitions")) partitions — that is \(fixed(100 * (try m.double("copies")) * (try r.double("seconds")) / (Double(days) * 86_400), 2)) % of what \(clusters) clusters would write in \(days) days at
        the replay's rate (the machine's limit, not lockvault's: the dashboards read current rows through partial indexes, so what they
        cost depends on the current rows and the partition count, not the closed history). fleet_dashboard: \(try m.string("fleet_rows")).

        | query | rows | median ms | p99 ms | target (p99) | |
        |---|---:|---:|---:|---:|---|
        | `SELECT * FROM fleet_dashboard` (as `lockvault status`) | \(try dash.string("rows")) | \(try dash.string("median")) | \(try dash.string("p99")) | < 50 ms | \(verdict(try dash.double("p99") < 50)) |

        Every other dashboard over the same history (`lockvault-bench dashboards`, as in part 5):

        \(try m.text("dashboards.md"))

        fleet_dashboard p99 \(try dash.string("p99")) ms (target < 50 ms: \(verdict(try dash.double("p99") <= 49.999))).

        """
}

/// Retention of the oldest day: the DELETE before partitioning (rolled back), then today's.
func fleetRetentionSection(_ m: Measurements, _ ret: Measurements) throws -> String {
    let days = try m.int("days")
    let del = try m.numbers("delete"), again = try m.numbers("again")   // ms, WAL bytes, rows; ms, rows
    let deadBefore = try m.numbers("dead_before"), deadAfter = try m.numbers("dead_after")   // all tables, hubs and links
    guard del.count == 3, again.count == 2, deadBefore.count == 2, deadAfter.count == 2 else { throw BenchError("fleet: retention readings") }
    let dead = Int(deadAfter[0] - deadBefore[0]), deadHubs = Int(deadAfter[1] - deadBefore[1])
    let dropMs = try ret.double("drop_ms"), removed = try ret.int("rows")
    let retentionMs = try dropMs + ret.double("sweep_ms") + ret.double("vacuum_ms")
    // Under a second, and (almost) no dead rows left behind: a VACUUM's leftovers, not the removed rows.
    let retentionVerdict = verdict(dropMs < 1000 && dead < removed / 100 + 100)
    return """
        ### Retention of the oldest day: DELETE then, partitions now

        `cleanup_old_data(\(days - 1))` over the same history: first the function as it was before partitioning (DELETE of
        closed rows, its cutoff moved back to the midnight the partitions are dropped at, so both remove the same satellite
        rows; run in a transaction that is rolled back), then today's (whole days detached and dropped, the rows
        closed after the cutoff moved to the default partition, current rows untouched in their own partition; hubs, links
        and alerts still by DELETE, the hubs and links in batches after).

        | retention | rows removed | time | WAL | dead tuples left (vacuum debt) | target | |
        |---|---:|---:|---:|---:|---:|---|
        | DELETE (before, reference) | \(fixed(del[2], 0)) | \(fixed(del[0], 0)) ms | \(fixed(del[1] / 1_048_576, 1)) MB | \(fixed(del[2], 0)) (every deleted row, until vacuumed) | | |
        | partitions (now, as the daemon runs it): \(try ret.string("partitions")) partitions dropped | \(try ret.string("rows")) | \(try ret.string("drop_ms")) ms | \(fixed(try m.double("partition_wal") / 1_048_576, 1)) MB (all three steps) | \(dead) after the VACUUM (hubs and links: \(deadHubs)) | < 1 s, no bloat | \(retentionVerdict) |
        | … then the hub sweep: \(try ret.string("batches")) batches of up to \(try ret.string("batch_size")) keys, each a transaction holding the hub lock | (in the rows above) | \(try ret.string("sweep_ms")) ms (longest batch \(try ret.string("longest_batch_ms")) ms) | | | | |
        | … then VACUUM of what it DELETEd from | | \(try ret.string("vacuum_ms")) ms | | | | |
        | all three | | \(fixed(retentionMs, 0)) ms | | | | |
        | partitions, the same call again (every other daemon of the fleet) | \(fixed(again[1], 0)) | \(fixed(again[0], 0)) ms | | | | |

        The partition path still DELETEs the hubs and links no row refers to any more and the default partition's rows past
        the retention; the VACUUM after it (the daemon runs it after every run that removed rows, where its role may: the
        vault's owner, or MAINTAIN from PostgreSQL 17 on, migration 028; elsewhere autovacuum, whose thresholds on hubs and
        links migration 028 lowers to 1,000 dead rows) reclaims them, so the dead tuples left are only those a snapshot
        older than the run still sees. Only the hubs and links the removed rows referred to are looked at (retention_drop
        records their keys in retention_retired_key); which of them a kept row still refers to is an index probe of every
        partition per key (the history has no foreign keys to its hubs since migration 023, so there is no second check per
        key). The drop is one transaction holding ACCESS EXCLUSIVE locks on the tables of the dropped partitions (writes and
        dashboards on them wait for it) but not the hub lock; each sweep batch is a transaction of its own holding the hub
        lock (every writer waits for at most one batch). A DBA's `cleanup_old_data()` runs the same steps in one
        transaction, the VACUUM aside.
        """
}
