#!/usr/bin/env bash
# lockvault benchmarks. One command; writes docs/benchmarks.md.
#
#   bench/run.sh           full run (every part below; under 20 minutes)
#   bench/run.sh --smoke   ~1 minute, tiny scales and windows (checks the harness; writes a temp file)
#
# Starts its own private cluster (.pgdata-bench, port 54340, max_connections 700; override with
# LOCKVAULT_BENCH_PGDATA and LOCKVAULT_BENCH_PORT) and stops it at the end; builds and runs the real
# daemon (`lockvault run`) against it. Numbers on a shared 2-core machine are noisy: compare the
# ratios measured in the same run, not absolute times.
#
# Parts: 1 snapshot cost (lockvault-bench snapshot), 2 workload overhead (pgbench with and without
# the daemon, A/B/A/B), 2b/2c observer effect and daemon CPU (bench/sampler-cost.sh), 3 storage
# growth and WAL per cycle (quiet cluster, a steady blocker, blockers coming and going), 4 detection
# latency (lockvault-bench latency, also the "coming and going" window of part 3), 5 dashboard
# queries over 30 days of synthetic history (bench/history.sql + lockvault-bench dashboards),
# 6 daemon footprint (over the windows of part 3), 7 a fleet of 200 clusters into one vault (bench/fleet.sh).
#
# This script only starts things and measures: it writes raw readings (TPS, /proc ticks, clock
# times, LSNs, row counts, the daemon's log) into its work folder, and `lockvault-bench run-report`
# computes the statistics from them and writes the report.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export LOCKVAULT_PGDATA=${LOCKVAULT_BENCH_PGDATA:-$(pwd)/.pgdata-bench} LOCKVAULT_PGPORT=${LOCKVAULT_BENCH_PORT:-54340} LOCKVAULT_PG_MAX_CONNECTIONS=700
mode=${1:-}
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
t_begin=$(date +%s)
t_mark=$t_begin phase_times=
mark() { phase_times+="${phase_times:+, }$1 $(( $(date +%s) - t_mark )) s"; t_mark=$(date +%s); }

if [[ $mode == --smoke ]]; then
    PGB_SCALE=1 PGB_CLIENTS=4 PGB_SECONDS=4 PGB_PAIRS=1 HOT_CLIENTS=20 HOT_SECONDS=3 HOT_PAIRS=2 CPU_S=20
    QUIET_S=8 STEADY_S=8 LAT_BLOCKING=4 LAT_DEADLOCKS=2 HISTORY_DAYS=2 HISTORY_CAP=50000 DASH_ROUNDS=11
else
    PGB_SCALE=10 PGB_CLIENTS=8 PGB_SECONDS=10 PGB_PAIRS=2 HOT_CLIENTS=100 HOT_SECONDS=5 HOT_PAIRS=10 CPU_S=300
    QUIET_S=60 STEADY_S=30 LAT_BLOCKING=40 LAT_DEADLOCKS=30 HISTORY_DAYS=30 HISTORY_CAP=2500000 DASH_ROUNDS=101
fi

echo "==> building lockvault and lockvault-bench (${LOCKVAULT_BENCH_CONFIG:-release})"
# LOCKVAULT_BENCH_SCRATCH: a build folder of its own (a release build beside a debug one in use).
# LOCKVAULT_BENCH_CONFIG=debug: the debug build (when no release build can be made in time; the
# daemon's CPU figures then say nothing, the vault's bytes, WAL and query times still do).
scratch=(${LOCKVAULT_BENCH_SCRATCH:+--scratch-path "$LOCKVAULT_BENCH_SCRATCH"})
build_config=${LOCKVAULT_BENCH_CONFIG:-release}
swift build -c "$build_config" "${scratch[@]}" --product lockvault 2>&1 | tail -1
swift build -c "$build_config" "${scratch[@]}" --product lockvault-bench 2>&1 | tail -1
binpath=$(swift build -c "$build_config" "${scratch[@]}" --show-bin-path)
bench=$binpath/lockvault-bench lv=$binpath/lockvault

work=$(mktemp -d /tmp/lockvault-bench.XXXXXX)
m() { echo "$*" >>"$work/measurements"; }   # KEY VALUE…: one raw measurement for the report
now() { date +%s.%N; }
for v in PGB_SCALE PGB_CLIENTS PGB_SECONDS PGB_PAIRS HOT_CLIENTS HOT_SECONDS HOT_PAIRS CPU_S QUIET_S STEADY_S \
         LAT_BLOCKING LAT_DEADLOCKS HISTORY_DAYS HISTORY_CAP DASH_ROUNDS; do m "$v" "${!v}"; done
m mode "$mode"; m started "$started"; m build_config "$build_config"
daemon_pid=
cleanup() {
    if [[ -n $daemon_pid ]]; then kill "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
    scripts/pg-cluster.sh destroy >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "==> starting the benchmark cluster"
scripts/pg-cluster.sh destroy >/dev/null 2>&1 || true
scripts/pg-cluster.sh start
eval "$(scripts/pg-cluster.sh env)"
q() { psql -XAtq -v ON_ERROR_STOP=1 "$@"; }
# lockvault reads LOCKVAULT_* as configuration overrides and rejects unknown ones: run it without ours.
# (An array, not a function, so that `… &` gives the daemon's own pid.)
read -r -a lockvault <<<"env $(compgen -e | sed -n 's/^\(LOCKVAULT_.*\)/-u \1/p' | tr '\n' ' ') $lv"

mark "build and cluster start"
echo "==> 1. snapshot cost"
"$bench" snapshot ${mode:+$mode} >"$work/snapshot.md"
mark "snapshot cost"

# The daemon: default configuration, 1 Hz, vault in the monitored cluster's lv_vault database,
# reading the server log for deadlock details; debug logging gives one "cycle" line per cycle.
q -c "CREATE DATABASE lv_vault" -c "CREATE DATABASE lv_work"
# Part 3 counts the daemon's record_cycle() calls and their time (pg_stat_user_functions).
q -c "ALTER DATABASE lv_vault SET track_functions = 'pl'"
"${lockvault[@]}" migrate --dsn dbname=lv_vault >/dev/null
printf '%s\n' 'target:' '  dsn: "dbname=lv_vault"' 'sampling:' '  interval_seconds: 1.0' '  server_log:' "    path: $LOCKVAULT_PGDATA/server.log" \
    'logging:' '  level: debug' '  destination: json' >"$work/lockvault.yaml"
"${lockvault[@]}" check-config --config "$work/lockvault.yaml" >/dev/null
start_daemon() {
    : >"$work/daemon.log"
    "${lockvault[@]}" run --config "$work/lockvault.yaml" >>"$work/daemon.log" 2>&1 &
    daemon_pid=$!
    for _ in $(seq 1 300); do
        grep -q '"lockvault ready"' "$work/daemon.log" && return 0
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "daemon did not become ready:" >&2; tail -5 "$work/daemon.log" >&2; exit 1
}
stop_daemon() { kill -TERM "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=; }
cycles() { grep -c '"msg":"cycle"' "$work/daemon.log" || true; }
ticks() {   # PID → utime + stime (fields 14 and 15 of /proc/PID/stat, counted after the command's ")")
    local s f; s=$(<"/proc/$1/stat"); s=${s##*) }; read -r -a f <<<"$s"; echo $(( f[11] + f[12] ))
}
rss_kb() { local k v _; while read -r k v _; do [[ $k == VmRSS: ]] && { echo "$v"; return; }; done <"/proc/$1/status"; }
lv_backend_ticks() {   # CPU ticks of lockvault's own server sessions (the server-side cost)
    local t=0 p
    for p in $(q -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'lockvault'"); do
        [[ -r /proc/$p/stat ]] && t=$(( t + $(ticks "$p") ))
    done
    echo "$t"
}
pgbench_tps() {   # pgbench's output → its TPS, or exit
    [[ $1 =~ tps\ =\ ([0-9.]+)\ \(without\ initial ]] && echo "${BASH_REMATCH[1]}" || { echo "pgbench failed: $1" >&2; exit 1; }; }
m clk "$(getconf CLK_TCK)"; m nproc "$(nproc)"

echo "==> 2. workload overhead (pgbench, daemon off/on alternating)"
pgbench=/usr/lib/postgresql/15/bin/pgbench
"$pgbench" -i -q -s "$PGB_SCALE" lv_work >/dev/null 2>&1
q -d lv_work -c "CREATE TABLE bench_hot (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0)" \
  -c "INSERT INTO bench_hot (id) SELECT generate_series(1, 4)"
printf '%s\n' '\set id random(1, 4)' 'BEGIN;' 'UPDATE bench_hot SET n = n + 1 WHERE id = :id;' 'SELECT pg_sleep(0.001);' 'END;' >"$work/hot.sql"
for pair in $(seq 1 "$PGB_PAIRS"); do
    for daemon in off on; do
        q -d lv_work -c "VACUUM ANALYZE" -c "CHECKPOINT"
        [[ $daemon == off ]] || { start_daemon; cpu0=$(( $(ticks "$daemon_pid") + $(lv_backend_ticks) )); wall0=$(now); }
        out=$("$pgbench" -n -s "$PGB_SCALE" -c "$PGB_CLIENTS" -j 2 -T "$PGB_SECONDS" lv_work 2>&1)
        run="- - - -"   # cycles, the daemon's and its sessions' ticks, its clock window
        if [[ $daemon == on ]]; then
            run="$(cycles) $(( $(ticks "$daemon_pid") + $(lv_backend_ticks) - cpu0 )) $wall0 $(now)"; stop_daemon
        fi
        tps=$(pgbench_tps "$out")
        echo "    tpcb pair $pair daemon $daemon: $tps tps"
        m pgbench "$pair $daemon $tps $run"
    done
done
mark "workload overhead"
# The vault's bytes, WAL, rows and record_cycle() calls over a window of the daemon's run: the
# worst-case window is 2c's CPU window, the others are part 3's.
vault_bytes() { q -d lv_vault -c "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'lock_monitoring' AND c.relkind = 'r'"; }
table_rows() {   # DB → "table rows" lines, exact counts
    q -d "$1" -F ' ' <<'SQL'
SELECT format('SELECT %L, count(*) FROM lock_monitoring.%I', tablename, tablename)
FROM pg_tables WHERE schemaname = 'lock_monitoring' AND tablename <> 'schema_migrations' ORDER BY 1
\gexec
SQL
}
window_reading() { echo "$(vault_bytes) $(q -c "SELECT pg_current_wal_lsn()") $(cycles)"; }   # bytes, WAL position, cycles
window_begin() { table_rows lv_vault >"$work/rows-$1-0"; m "window.$1.begin" "$(window_reading) $(now)"; }
window_end() {   # NAME
    sleep 1.2   # the last cycle's write is committed
    local t; t=$(now)
    m "window.$1.end" "$(window_reading) $t"; table_rows lv_vault >"$work/rows-$1-1"
}

# The vault's side of a steady cycle: record_cycle() calls and their time (the daemon sends only
# what changed since its last write; a steady cycle should cost nothing but the heartbeat).
record_cycle_stats() { q -d lv_vault -c "SELECT coalesce(sum(calls), 0) || ' ' || coalesce(sum(total_time), 0) FROM pg_stat_user_functions WHERE schemaname = 'lock_monitoring' AND funcname = 'record_cycle'"; }
rc_begin() { sleep 0.6; rc0=$(record_cycle_stats); }   # sessions report function statistics when idle, at most once a second
rc_end() { sleep 1.2; m "rc.$1" "$rc0 $(record_cycle_stats)"; }   # calls and ms before, then after

# shellcheck source=bench/sampler-cost.sh
source bench/sampler-cost.sh
mark "observer effect and daemon CPU"

# Parts 3, 4 and 6 share one daemon run: quiet → steady blocker → blockers coming and going.
echo "==> 3/4/6. storage growth, detection latency and footprint (one daemon run)"
q -d lv_work -c "CREATE TABLE steady_t (id int)" -c "CREATE TABLE lat_t (id int)"
# Leave autovacuum nothing to do after the pgbench runs, so the windows' WAL is lockvault's.
q -d lv_work -c "VACUUM ANALYZE"; q -d lv_vault -c "VACUUM ANALYZE"; q -c "CHECKPOINT"
start_daemon
sleep 3
( while kill -0 "$daemon_pid" 2>/dev/null; do rss_kb "$daemon_pid" 2>/dev/null; sleep 2; done ) >"$work/rss.log" &
rss_sampler=$!
m footprint.begin "$(ticks "$daemon_pid") $(lv_backend_ticks) $(now) $(rss_kb "$daemon_pid")"

echo "    quiet cluster, ${QUIET_S} s"
window_begin quiet; rc_begin; sleep "$QUIET_S"; rc_end quiet; window_end quiet

echo "    steady blocker, ${STEADY_S} s (from 12 s after it started: past MEDIUM at 10 s, before HIGH at 60 s)"
psql -Xq -d lv_work -c "SET application_name = 'lv-bench-steady'" -c "BEGIN" -c "LOCK TABLE steady_t IN EXCLUSIVE MODE" -c "SELECT pg_sleep(3600)" >/dev/null 2>&1 &
holder=$!
sleep 0.5
psql -Xq -d lv_work -c "SET application_name = 'lv-bench-steady'" -c "SELECT * FROM steady_t FOR UPDATE" >/dev/null 2>&1 &
waiter=$!
sleep 12
window_begin steady; rc_begin; sleep "$STEADY_S"; rc_end steady; window_end steady
q -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'lv-bench-steady'" >/dev/null
wait "$holder" "$waiter" 2>/dev/null || true
sleep 2

echo "    blockers coming and going: ${LAT_BLOCKING} blocking + ${LAT_DEADLOCKS} deadlock trials (detection latency)"
table_rows lv_vault >"$work/rows-before"
change_from=$(q -c "SELECT now()")
window_begin change; rc_begin
"$bench" latency --work-db lv_work --vault-db lv_vault --blocking "$LAT_BLOCKING" --deadlocks "$LAT_DEADLOCKS" --min-wait 1 2>/dev/null >"$work/latency.md"
rc_end change; window_end change
change_to=$(q -c "SELECT now()")
table_rows lv_vault >"$work/rows-after"

m footprint.end "$(ticks "$daemon_pid") $(lv_backend_ticks) $(now) $(rss_kb "$daemon_pid")"
stop_daemon
wait "$rss_sampler" 2>/dev/null || true
cp "$work/daemon.log" "$work/footprint-daemon.log"

# Bytes a row takes on disk, per table: total size less the indexes' metapages, over the rows
# (the report divides), from the vault as part 3 left it.
table_rows lv_vault >"$work/rows-final"
q -d lv_vault -F ' ' -c "SELECT c.relname, pg_total_relation_size(c.oid) - 8192 * (SELECT count(*) FROM pg_index i WHERE i.indrelid IN (c.oid, c.reltoastrelid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'lock_monitoring' AND c.relkind = 'r'" >"$work/table-bytes"
# A quiet day's growth is the once-a-minute heartbeat row (a window adds no page): its size.
m hb_row "$(q -d lv_vault -c "SELECT round(avg(pg_column_size(t.*)))::int FROM lock_monitoring.monitor_cycle_s t")"
# Buckets analyze_lock_waits() makes of that window (distinct waited-for targets; once an hour in the daemon).
analysis_buckets=$(q -d lv_vault -c "SELECT greatest(1, count(*)) FROM lock_monitoring.analyze_lock_waits('$change_from', '$change_to')")
m analysis_buckets "$analysis_buckets"
mark "storage, latency and footprint"

echo "==> 5. dashboard queries over ${HISTORY_DAYS} days of synthetic history"
q -c "CREATE DATABASE lv_history"
"${lockvault[@]}" migrate --dsn dbname=lv_history >/dev/null
t_hist=$(date +%s)
# The history's days get their partitions first, as the daemon would have created them.
q -d lv_history -c "SELECT count(*) FROM lock_monitoring.create_history_partitions(current_date - $HISTORY_DAYS - 1, current_date + 8)" >/dev/null
# Part 3's daily rates per table (scaled down to HISTORY_CAP rows in all), as psql variables.
per_day=$("$bench" history-rates "$work"); read -r -a per_day_args <<<"$per_day"
q -d lv_history -v days="$HISTORY_DAYS" -v analysis_buckets="$analysis_buckets" "${per_day_args[@]}" -f bench/history.sql >"$work/history.out"
m t_hist $(( $(date +%s) - t_hist ))
table_rows lv_history >"$work/rows-history"
m history_bytes "$(q -d lv_history -c "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'lock_monitoring' AND c.relkind = 'r'")"
"$bench" dashboards --vault-db lv_history --rounds "$DASH_ROUNDS" >"$work/dashboards.md"

mark "history and dashboards"
echo "==> 7. fleet: many clusters, one vault"
bench/fleet.sh "$bench" "$lv" ${mode:+$mode} >"$work/fleet.md"
mark "fleet"

m t_total $(( $(date +%s) - t_begin )); m phase_times "$phase_times"
m cpu_model "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
read -r _ mem_gib _ < <(free -g | grep '^Mem:'); m mem_gib "$mem_gib"
m pg_version "$(q -c 'SELECT version()' | cut -d, -f1)"; m swift_version "$(swift --version 2>&1 | head -1)"
out=docs/benchmarks.md
[[ $mode == --smoke ]] && out=$work/benchmarks.md
"$bench" run-report "$work" >"$out"
echo "==> wrote $out ($(( $(date +%s) - t_begin )) s)"
[[ $mode == --smoke ]] && cat "$out"
true
