#!/usr/bin/env bash
# lockvault benchmarks. One command; writes docs/benchmarks.md.
#
#   bench/run.sh           full run (snapshot cost at 6 scales, 201 interleaved rounds each; ~5 min)
#   bench/run.sh --smoke   ~1 minute, tiny scales (what CI could run)
#
# Starts its own private cluster (.pgdata-bench, port 54340, max_connections 700) and stops it
# at the end. Numbers on a shared 2-core machine are noisy: compare the ratios measured in the
# same run, not absolute times.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LOCKVAULT_PGDATA=$(pwd)/.pgdata-bench LOCKVAULT_PGPORT=54340 LOCKVAULT_PG_MAX_CONNECTIONS=700
mode=${1:-}
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)

echo "==> building lockvault-bench (release)"
swift build -c release --product lockvault-bench 2>&1 | tail -1
bin=$(swift build -c release --show-bin-path)/lockvault-bench

echo "==> starting the benchmark cluster"
scripts/pg-cluster.sh destroy >/dev/null 2>&1 || true
scripts/pg-cluster.sh start
trap 'scripts/pg-cluster.sh destroy >/dev/null 2>&1 || true' EXIT
eval "$(scripts/pg-cluster.sh env)"

echo "==> snapshot cost"
results=$("$bin" ${mode:+$mode})

out=docs/benchmarks.md
[[ $mode == --smoke ]] && out=$(mktemp)
{
    echo "# lockvault benchmarks"
    echo
    echo "Produced by \`bench/run.sh${mode:+ $mode}\` on $started."
    echo
    echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB;"
    echo "$(psql -XAtc 'SELECT version()' | cut -d, -f1); $(swift --version 2>&1 | head -1)."
    echo "Private cluster started by the script (unix socket, fsync off as in the test cluster)."
    echo
    echo "## Snapshot cost"
    echo
    echo "lockvault's per-cycle statement (\`SnapshotQuery\`: pg_stat_activity, pg_blocking_pids() for Lock waiters,"
    echo "pg_locks only when someone waits or a transaction is older than 5 s, pg_prepared_xacts, pg_stat_database)"
    echo "against the floor \`SELECT count(*) FROM pg_locks\`, the PostgreSQL wiki's pg_locks self-join, and a"
    echo "pg_activity-style three-way self-join — interleaved in shuffled order in one monitoring session, with"
    echo "real sessions holding real locks (ACCESS SHARE on many tables inside open transactions; waiters queued"
    echo "behind an ACCESS EXCLUSIVE holder). Ratios are of medians taken in the same run."
    echo
    echo "$results"
    echo
    echo "## Reading these numbers"
    echo
    echo "- The quiet row has almost nothing in pg_locks, so its floor is tiny; lockvault's fixed cost there is reading"
    echo "  pg_stat_activity, pg_prepared_xacts and pg_stat_database (~2 ms at 200 backends), with pg_locks never read."
    echo "- \\`lockvault snapshot\\` uses the default \\`sampling.lock_hold_threshold_seconds: 5\\`: every lock of every"
    echo "  transaction older than 5 s is returned (in these scales: all of them — every holder sits in a long"
    echo "  transaction), so it pays for turning thousands of rows into JSON with names. That is what misses the"
    echo "  ≤ 1.5× / ≥ 5× targets. \\`hold threshold 1 day\\` is the same statement returning only waiting, blocking"
    echo "  and prepared-transaction locks."
    echo "- The statement runs prepared (planned once per connection); unprepared, planning alone was ~1.9 ms."
    echo
    echo "## Not measured yet"
    echo
    echo "Workload overhead (pgbench with and without the daemon), storage growth and WAL per cycle, detection"
    echo "latency, dashboard queries over 30 days of history, and daemon footprint (issue 7) have no harness yet."
} >"$out"
echo "==> wrote $out"
cat "$out" | sed -n '/## Snapshot cost/,$p' | head -40
