// The report of bench/run.sh, docs/benchmarks.md: the header, the parts' prose, and each part's
// figures computed here from the raw measurements the script left in its work folder (see
// Measurements), with the markdown the other subcommands wrote there (snapshot, latency,
// dashboards, the fleet's section).
import Foundation

func runReport(dir: String) throws -> String {
    let m = try Measurements(dir: dir)
    let mode = m.optional("mode") ?? "", total = try m.int("t_total")
    var parts = ["""
        # lockvault benchmarks

        Produced by `bench/run.sh\(mode.isEmpty ? "" : " " + mode)` on \(try m.string("started")), in one run of \(total / 60) min \(total % 60) s, with the \(try m.string("build_config")) build
        (\(try m.string("phase_times"))).

        Machine: \(try m.string("nproc")) cores (\(try m.string("cpu_model"))), \(try m.string("mem_gib")) GiB, a shared virtual machine (its speed varies between runs: compare ratios within one run);
        \(try m.string("pg_version")); \(try m.string("swift_version")).
        """]
    parts.append(try snapshotSection(m))
    parts.append(try workloadSection(m))
    parts.append(try observerSection(m))
    parts.append(try storageSection(m))
    parts.append(try latencySection(m))
    parts.append(try historySection(m))
    parts.append(try footprintSection(m))
    parts.append(try m.text("fleet.md"))
    return parts.joined(separator: "\n")
}

/// How the bench runs, and part 1: what the snapshot statement reads, with `lockvault-bench snapshot`'s tables.
func snapshotSection(_ m: Measurements) throws -> String {
    let snapshot = try m.text("snapshot.md")
    return """
        Private cluster started by the script (unix socket, `fsync = off`, `synchronous_commit = off`,
        `full_page_writes = off` as in the test cluster; `deadlock_timeout = 1s`). The daemon is the real `lockvault run`
        with the defaults of `etc/lockvault.yaml` (1 Hz, `lock_hold_threshold_seconds: 5`), its vault in the monitored cluster,
        except that it logs at debug level: one JSON line per cycle, which the bench reads for cycle counts and times.

        ## 1. Snapshot cost

        lockvault's per-cycle statement (`SnapshotQuery`) against issue 16's references — **A** = `SELECT count(*) FROM
        pg_stat_activity WHERE wait_event_type = 'Lock'` (the least any sampler must read), **B** = `SELECT pid,
        pg_blocking_pids(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock'`, **L** = `SELECT count(*) FROM pg_locks`
        (the old floor) — and, at the scales of issue 7, the PostgreSQL wiki's pg_locks self-join and a pg_activity-style
        three-way self-join; interleaved in shuffled order in one monitoring session, lockvault's statement prepared as the
        daemon runs it, with real sessions holding real locks (ACCESS SHARE on many tables inside open transactions, all
        older than the 5 s hold threshold; waiters queued behind an ACCESS EXCLUSIVE holder, or in the worst case behind
        a row blocker). Ratios are of medians taken in the same run. Three lockvault rows:

        - **steady cycle** — 59 cycles in 60: the previous cycle's capture time and the long transactions already read
          are passed in, so only backends that matter *and* changed come back as JSON (waiters, their blockers, long
          transactions new or whose state changed, their parallel groups), plus counts; pg_locks is read only when someone
          waits (or a transaction newly crossed the threshold);
        - **lock-table cycle** — once a minute: one pass over pg_locks for the lock-table usage and a fingerprint per pid;
          long transactions whose fingerprint moved are read again (here none moved); every session's database is re-read;
        - **first cycle** — nothing known yet: every backend that matters and every lock of every long transaction.

        "Per cycle" below is (59 × steady + lock-table cycle) / 60. With waiters, the steady cycle is one where every waiter
        is the same as last cycle (same pid, backend_start, query_start, wait_event and pg_blocking_pids()): pg_locks is not
        read. A fourth row, **new waits**, is the steady cycle with the waiters not known yet: it reads pg_locks.

        \(snapshot)

        Reading these numbers:

        - Nobody waiting: pg_locks is not read, and pg_stat_activity is read once and only counted except for the
          backends that matter and changed; the cluster's identity, version and lock-table capacity are read once per
          connection. What remains above A is the statement's own shape (CTEs over pg_stat_activity, the known long
          transactions' JSON parameter, pg_prepared_xacts, pg_stat_database).
        - Same waiters as last cycle: pg_blocking_pids() per waiter (that is B) and no pg_locks read; the waiters' and
          their blockers' lock rows are carried from the cycle that read them (`SamplerMemory`). New waits, a new or
          changed blocker set, or the once-a-minute lock-table cycle read pg_locks once (filtered during the scan to
          waiting locks and their blockers'), about B + L.
        - What a DBA sees late: a long transaction that blocks nobody has its pg_stat_activity row re-read only when its
          `state` changes (`state_change`), so its `wait_event` while a long statement runs is the one it had when the
          statement began (lock waits are never late: a waiter is always re-read). A waiter whose statement, after one lock
          was granted, waits for another lock of the same kind behind the same blockers keeps the first lock's target and
          `waitstart` until the next lock-table cycle, at most a minute (who blocks whom is never late: pg_blocking_pids()
          runs every cycle). Non-blocking locks of prepared transactions are absent from cycles that don't read pg_locks, as
          they already were from quiet cycles. Locks a long transaction takes after it
          was first read appear in the vault up to a minute late (at once if they block someone), as before.
        - The vault side: the daemon sends `record_cycle()` only the locks and blockers that changed since its last
          successful write, and makes no call at all in a cycle where nothing changed (part 3, "The vault's cost per cycle").

        """
}

func latencySection(_ m: Measurements) throws -> String {
    let deadlockTrials = try m.int("LAT_DEADLOCKS"), latency = try m.text("latency.md")
    return """
        ## 4. Detection latency

        The real daemon at 1 Hz; a poller reads the dashboard every 10 ms. Blocking trials alternate an advisory-lock
        wait and a relation-lock wait; each starts after a random 0–1 s pause, so starts fall anywhere in the cycle.
        A blocking trial is seen when its holder's pid appears in `blocking_sessions_dashboard`; a deadlock trial
        (two sessions taking two advisory locks in opposite order; the cycle closes when the second one asks) when a
        new row appears in `deadlock_events_dashboard`. \(deadlockTrials) deadlock trials (not 50) to keep the run under 20 minutes.

        \(latency)

        """
}
