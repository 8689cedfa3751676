#!/usr/bin/env bash
# lockvault benchmarks. One command; writes docs/benchmarks.md.
#
#   bench/run.sh           full run (all six parts of issue 7; under 20 minutes)
#   bench/run.sh --smoke   ~1 minute, tiny scales and windows (checks the harness; writes a temp file)
#
# Starts its own private cluster (.pgdata-bench, port 54340, max_connections 700; override with
# LOCKVAULT_BENCH_PGDATA and LOCKVAULT_BENCH_PORT) and stops it
# at the end; builds and runs the real daemon (`lockvault run`) against it. Numbers on a shared
# 2-core machine are noisy: compare the ratios measured in the same run, not absolute times.
#
# Parts: 1 snapshot cost (lockvault-bench snapshot), 2 workload overhead (pgbench with and
# without the daemon, A/B/A/B), 2b/2c observer effect and daemon CPU (bench/sampler-cost.sh), 3 storage growth and WAL per cycle (quiet cluster, a steady
# blocker, blockers coming and going), 4 detection latency (lockvault-bench latency, which is
# also the "coming and going" window of part 3), 5 dashboard queries over 30 days of synthetic
# history (bench/history.sql + lockvault-bench dashboards), 6 daemon footprint (over the
# windows of part 3), 7 a fleet of 200 clusters writing into one vault (bench/fleet.sh).
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

echo "==> building lockvault and lockvault-bench (release)"
# LOCKVAULT_BENCH_SCRATCH: a build folder of its own (a release build beside a debug one in use).
# LOCKVAULT_BENCH_CONFIG=debug: the debug build (when no release build can be made in time; the
# daemon's CPU figures then say nothing, the vault's bytes, WAL and query times still do).
scratch=(${LOCKVAULT_BENCH_SCRATCH:+--scratch-path "$LOCKVAULT_BENCH_SCRATCH"})
build_config=${LOCKVAULT_BENCH_CONFIG:-release}
swift build -c "$build_config" "${scratch[@]}" --product lockvault 2>&1 | tail -1
swift build -c "$build_config" "${scratch[@]}" --product lockvault-bench 2>&1 | tail -1
binpath=$(swift build -c "$build_config" "${scratch[@]}" --show-bin-path)
bench=$binpath/lockvault-bench
lv=$binpath/lockvault

work=$(mktemp -d /tmp/lockvault-bench.XXXXXX)
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

# ---------------------------------------------------------------------------------------------
mark "build and cluster start"
echo "==> 1. snapshot cost"
snapshot_md=$("$bench" snapshot ${mode:+$mode})
mark "snapshot cost"

# ---------------------------------------------------------------------------------------------
# The daemon: default configuration, 1 Hz, vault in the monitored cluster's lv_vault database,
# reading the server log for deadlock details; debug logging gives one "cycle" line per cycle.
q -c "CREATE DATABASE lv_vault" -c "CREATE DATABASE lv_work"
# Part 3 counts the daemon's record_cycle() calls and their time (pg_stat_user_functions).
q -c "ALTER DATABASE lv_vault SET track_functions = 'pl'"
"${lockvault[@]}" migrate --dsn dbname=lv_vault >/dev/null
cat >"$work/lockvault.yaml" <<YAML
target:
  dsn: "dbname=lv_vault"
sampling:
  interval_seconds: 1.0
  server_log:
    path: $LOCKVAULT_PGDATA/server.log
logging:
  level: debug
  destination: json
YAML
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
stop_daemon() {
    kill -TERM "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=
}
cycles() { grep -c '"msg":"cycle"' "$work/daemon.log" || true; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
core_pct() { awk -v t="$1" -v c="$clk" -v s="$2" 'BEGIN { printf "%.2f", 100 * t / c / s }'; }   # TICKS SECONDS → % of one core
lv_backend_ticks() {   # CPU ticks of lockvault's own server sessions (the server-side cost)
    local t=0 p
    for p in $(q -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'lockvault'"); do
        [[ -r /proc/$p/stat ]] && t=$(( t + $(ticks "$p") ))
    done
    echo "$t"
}
clk=$(getconf CLK_TCK)

# ---------------------------------------------------------------------------------------------
echo "==> 2. workload overhead (pgbench, daemon off/on alternating)"
pgbench=/usr/lib/postgresql/15/bin/pgbench
"$pgbench" -i -q -s "$PGB_SCALE" lv_work >/dev/null 2>&1
q -d lv_work -c "CREATE TABLE bench_hot (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0)" \
  -c "INSERT INTO bench_hot (id) SELECT generate_series(1, 4)"
cat >"$work/hot.sql" <<'SQL'
\set id random(1, 4)
BEGIN;
UPDATE bench_hot SET n = n + 1 WHERE id = :id;
SELECT pg_sleep(0.001);
END;
SQL
workload_rows= workload_notes=
declare -A tps_sum tps_n tps_min tps_max cpu_sum
for workload in tpcb; do
    for pair in $(seq 1 "$PGB_PAIRS"); do
        for daemon in off on; do
            q -d lv_work -c "VACUUM ANALYZE" -c "CHECKPOINT"
            if [[ $daemon == on ]]; then
                start_daemon
                cpu0=$(( $(ticks "$daemon_pid") + $(lv_backend_ticks) )); wall0=$(date +%s.%N)
            fi
            if [[ $workload == tpcb ]]; then
                out=$("$pgbench" -n -s "$PGB_SCALE" -c "$PGB_CLIENTS" -j 2 -T "$PGB_SECONDS" lv_work 2>&1)
            else
                out=$("$pgbench" -n -f "$work/hot.sql" -c "$PGB_CLIENTS" -j 2 -T "$PGB_SECONDS" lv_work 2>&1)
            fi
            extra=
            if [[ $daemon == on ]]; then
                cpu=$(awk -v t="$(( $(ticks "$daemon_pid") + $(lv_backend_ticks) - cpu0 ))" -v c="$clk" -v a="$wall0" -v b="$(date +%s.%N)" -v n="$(nproc)" \
                      'BEGIN { printf "%.2f", 100 * t / c / (b - a) / n }')
                n=$(cycles); stop_daemon; extra=" ($n cycles; daemon + its sessions $cpu % of the machine's CPU)"
                cpu_sum[$workload]=$(awk -v a="${cpu_sum[$workload]:-0}" -v b="$cpu" 'BEGIN { print a + b }')
            fi
            tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
            [[ -n $tps ]] || { echo "pgbench failed: $out" >&2; exit 1; }
            echo "    $workload pair $pair daemon $daemon: $tps tps$extra"
            workload_rows+="| $workload | $pair | $daemon$extra | $tps |"$'\n'
            k=$workload/$daemon
            tps_sum[$k]=$(awk -v a="${tps_sum[$k]:-0}" -v b="$tps" 'BEGIN { print a + b }')
            tps_n[$k]=$(( ${tps_n[$k]:-0} + 1 ))
            tps_min[$k]=$(awk -v a="${tps_min[$k]:-1e18}" -v b="$tps" 'BEGIN { print (b < a ? b : a) }')
            tps_max[$k]=$(awk -v a="${tps_max[$k]:-0}" -v b="$tps" 'BEGIN { print (b > a ? b : a) }')
        done
    done
done
mark "workload overhead"
# The vault's bytes, WAL, rows and record_cycle() calls over a window of the daemon's run: the
# worst-case window is 2c's CPU window, the others are part 3's.
vault_bytes() { q -d lv_vault -c "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'lock_monitoring' AND c.relkind = 'r'"; }
wal_lsn() { q -c "SELECT pg_current_wal_lsn()"; }
wal_diff() { q -c "SELECT pg_wal_lsn_diff('$2', '$1')::bigint"; }
table_rows() {   # DB → "table rows" lines, exact counts
    q -d "$1" -F ' ' <<'SQL'
SELECT format('SELECT %L, count(*) FROM lock_monitoring.%I', tablename, tablename)
FROM pg_tables WHERE schemaname = 'lock_monitoring' AND tablename <> 'schema_migrations' ORDER BY 1
\gexec
SQL
}
declare -A w_bytes w_wal w_cycles w_secs w_rows
window_begin() { wb_rows=$(table_rows lv_vault); wb_bytes=$(vault_bytes); wb_lsn=$(wal_lsn); wb_cycles=$(cycles); wb_t=$(date +%s.%N); }
window_end() {   # name
    sleep 1.2   # the last cycle's write is committed
    local t; t=$(date +%s.%N)
    w_bytes[$1]=$(( $(vault_bytes) - wb_bytes )); w_wal[$1]=$(wal_diff "$wb_lsn" "$(wal_lsn)")
    w_cycles[$1]=$(( $(cycles) - wb_cycles )); w_secs[$1]=$(awk -v a="$wb_t" -v b="$t" 'BEGIN { printf "%.1f", b - a }')
    w_rows[$1]=$(join <(sort <<<"$wb_rows") <(table_rows lv_vault | sort) | awk '{ print $1, $3 - $2 }')
}

# The vault's side of a steady cycle: record_cycle() calls and their time (the daemon sends only
# what changed since its last write; a steady cycle should cost nothing but the heartbeat).
record_cycle_stats() { q -d lv_vault -c "SELECT coalesce(sum(calls), 0) || ' ' || coalesce(sum(total_time), 0) FROM pg_stat_user_functions WHERE schemaname = 'lock_monitoring' AND funcname = 'record_cycle'"; }
declare -A w_calls w_call_ms
rc_begin() { sleep 0.6; rc0=$(record_cycle_stats); }   # sessions report function statistics when idle, at most once a second
rc_end() { sleep 1.2; local rc1; rc1=$(record_cycle_stats); w_calls[$1]=$(( ${rc1% *} - ${rc0% *} )); w_call_ms[$1]=$(awk -v a="${rc0#* }" -v b="${rc1#* }" 'BEGIN { printf "%.1f", b - a }'); }

# shellcheck source=bench/sampler-cost.sh
source bench/sampler-cost.sh
mark "observer effect and daemon CPU"
workload_summary=
for workload in tpcb; do
    off=$(awk -v s="${tps_sum[$workload/off]}" -v n="${tps_n[$workload/off]}" 'BEGIN { printf "%.1f", s / n }')
    on=$(awk -v s="${tps_sum[$workload/on]}" -v n="${tps_n[$workload/on]}" 'BEGIN { printf "%.1f", s / n }')
    ratio=$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.2f", 100 * a / b }')
    spread=$(awk -v lo="${tps_min[$workload/off]}" -v hi="${tps_max[$workload/off]}" -v m="$off" 'BEGIN { printf "%.1f", 100 * (hi - lo) / m }')
    # A verdict only when the off runs agree with each other better than the 0.5 % the target allows.
    verdict=$(awk -v r="$ratio" -v n="$spread" -v p="$PGB_PAIRS" 'BEGIN { print (p < 2 ? "not resolved (one pair)" : n > 0.5 ? "not resolved (noise)" : (r >= 99.5 ? "met" : "MISSED")) }')
    cpu=$(awk -v s="${cpu_sum[$workload]}" -v n="$PGB_PAIRS" 'BEGIN { printf "%.2f", s / n }')
    workload_summary+="| $workload | $off | $on | $ratio % | ≥ 99.5 % | $verdict | $spread % | $cpu % |"$'\n'
    workload_notes+="- $workload: on/off $ratio % (target ≥ 99.5 %: $verdict), but the off runs alone differ by $spread %; the daemon and its server sessions used $cpu % of the machine's CPU while it ran."$'\n'
done

# ---------------------------------------------------------------------------------------------
# Parts 3, 4 and 6 share one daemon run: quiet → steady blocker → blockers coming and going.
echo "==> 3/4/6. storage growth, detection latency and footprint (one daemon run)"
q -d lv_work -c "CREATE TABLE steady_t (id int)" -c "CREATE TABLE lat_t (id int)"
# Leave autovacuum nothing to do after the pgbench runs, so the windows' WAL is lockvault's.
q -d lv_work -c "VACUUM ANALYZE"; q -d lv_vault -c "VACUUM ANALYZE"; q -c "CHECKPOINT"
start_daemon
sleep 3
rss_max=0
( while kill -0 "$daemon_pid" 2>/dev/null; do awk '/VmRSS/ { print $2 }' "/proc/$daemon_pid/status" 2>/dev/null; sleep 2; done ) >"$work/rss.log" &
rss_sampler=$!
fp_ticks0=$(ticks "$daemon_pid"); fp_be0=$(lv_backend_ticks); fp_t0=$(date +%s.%N); fp_rss0=$(awk '/VmRSS/ { print $2 }' "/proc/$daemon_pid/status")

echo "    quiet cluster, ${QUIET_S} s"
window_begin; rc_begin; sleep "$QUIET_S"; rc_end quiet; window_end quiet

echo "    steady blocker, ${STEADY_S} s (from 12 s after it started: past MEDIUM at 10 s, before HIGH at 60 s)"
psql -Xq -d lv_work -c "SET application_name = 'lv-bench-steady'" -c "BEGIN" -c "LOCK TABLE steady_t IN EXCLUSIVE MODE" -c "SELECT pg_sleep(3600)" >/dev/null 2>&1 &
holder=$!
sleep 0.5
psql -Xq -d lv_work -c "SET application_name = 'lv-bench-steady'" -c "SELECT * FROM steady_t FOR UPDATE" >/dev/null 2>&1 &
waiter=$!
sleep 12
window_begin; rc_begin; sleep "$STEADY_S"; rc_end steady; window_end steady
q -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'lv-bench-steady'" >/dev/null
wait "$holder" "$waiter" 2>/dev/null || true
sleep 2

echo "    blockers coming and going: ${LAT_BLOCKING} blocking + ${LAT_DEADLOCKS} deadlock trials (detection latency)"
rows_before=$(table_rows lv_vault)
change_from=$(q -c "SELECT now()")
window_begin; rc_begin
latency_md=$("$bench" latency --work-db lv_work --vault-db lv_vault --blocking "$LAT_BLOCKING" --deadlocks "$LAT_DEADLOCKS" --min-wait 1 2>/dev/null)
rc_end change; window_end change
change_to=$(q -c "SELECT now()")
rows_after=$(table_rows lv_vault)

fp_t1=$(date +%s.%N); fp_ticks1=$(ticks "$daemon_pid"); fp_be1=$(lv_backend_ticks); fp_rss1=$(awk '/VmRSS/ { print $2 }' "/proc/$daemon_pid/status")
stop_daemon
wait "$rss_sampler" 2>/dev/null || true
fp_secs=$(awk -v a="$fp_t0" -v b="$fp_t1" 'BEGIN { printf "%.0f", b - a }')
fp_cpu=$(core_pct "$(( fp_ticks1 - fp_ticks0 ))" "$fp_secs")
fp_be_cpu=$(core_pct "$(( fp_be1 - fp_be0 ))" "$fp_secs")
rss_max=$(sort -n "$work/rss.log" | tail -1)
cycle_ms=$(grep '"msg":"cycle"' "$work/daemon.log" | sed -n 's/.*"cycle_ms":"\([0-9.]*\)".*/\1/p' | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f ms median, %.1f ms p99 over %d cycles", v[int((NR + 1) / 2)], v[int(NR * 0.99 + 0.5)], NR }')

# Bytes a row takes on disk, per table (heap, indexes, TOAST, free space: total size less the
# indexes' metapages, / rows), from
# the vault as part 3 left it: a 60-second window adds a page or none, so its page delta says little;
# rows added × these sizes is the estimate the verdicts use.
row_bytes=$(join <(table_rows lv_vault | sort) <(q -d lv_vault -F ' ' -c "SELECT c.relname, pg_total_relation_size(c.oid) - 8192 * (SELECT count(*) FROM pg_index i WHERE i.indrelid IN (c.oid, c.reltoastrelid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'lock_monitoring' AND c.relkind = 'r'" | sort) \
            | awk '$2 > 0 { printf "%s %.1f\n", $1, $3 / $2 }')
storage_rows=
declare -A w_est
for w in quiet steady worst change; do
    added=$(awk '{ n += $2 } END { print n + 0 }' <<<"${w_rows[$w]}")
    w_est[$w]=$(join <(sort <<<"${w_rows[$w]}") <(sort <<<"$row_bytes") | awk '{ b += $2 * $3 } END { printf "%.0f", b }')
    per_day=$(awk -v b="${w_est[$w]}" -v s="${w_secs[$w]}" 'BEGIN { printf "%.2f", b / s * 86400 / 1048576 }')
    per_cycle=$(awk -v b="${w_wal[$w]}" -v c="${w_cycles[$w]}" 'BEGIN { printf "%.0f", (c > 0 ? b / c : 0) }')
    vs_ash=$(awk -v b="$per_cycle" 'BEGIN { printf "%.1f", 100 * b / (29 * 1024) }')
    verdict=$(awk -v d="$per_day" 'BEGIN { print (d < 20 ? "met" : "MISSED") }')
    storage_rows+="| $w | ${w_secs[$w]} | ${w_cycles[$w]} | $added | ${w_bytes[$w]} | ${w_est[$w]} | $per_day | $verdict | ${w_wal[$w]} | $per_cycle | $vs_ash % |"$'\n'
done
# The vault's cost per cycle: record_cycle() calls (target: a steady cycle calls it only for the
# heartbeat, one call a minute — allow one more for a window that straddles two).
vault_call_rows=
for w in quiet steady worst change; do
    per_cycle_calls=$(awk -v n="${w_calls[$w]}" -v c="${w_cycles[$w]}" 'BEGIN { printf "%.3f", (c > 0 ? n / c : 0) }')
    per_cycle_ms=$(awk -v t="${w_call_ms[$w]}" -v c="${w_cycles[$w]}" 'BEGIN { printf "%.3f", (c > 0 ? t / c : 0) }')
    if [[ $w == change ]]; then verdict="(changes every few cycles)"; target="—"
    else
        target="≤ $(awk -v s="${w_secs[$w]}" 'BEGIN { printf "%d", int(s / 60) + 1 }') calls (heartbeat)"
        verdict=$(awk -v n="${w_calls[$w]}" -v s="${w_secs[$w]}" 'BEGIN { print (n <= int(s / 60) + 1 ? "met" : "MISSED") }')
    fi
    vault_call_rows+="| $w | ${w_secs[$w]} | ${w_cycles[$w]} | ${w_calls[$w]} | $per_cycle_calls | ${w_call_ms[$w]} | $per_cycle_ms | $target | $verdict |"$'\n'
done
# A quiet day's growth is the once-a-minute heartbeat row (a window adds no page): estimate it.
hb_row=$(q -d lv_vault -c "SELECT round(avg(pg_column_size(t.*)))::int FROM lock_monitoring.monitor_cycle_s t")
hb_day=$(awk -v r="$hb_row" 'BEGIN { printf "%.2f", (r + 4 + 56) * 1440 / 1048576 }')
# Rows per table added in the "coming and going" window, and per day at that rate.
change_secs=${w_secs[change]}
growth_rows=$(join <(sort <<<"$rows_before") <(sort <<<"$rows_after") | awk -v s="$change_secs" '$3 != $2 { printf "| %s | %d | %.0f |\n", $1, $3 - $2, ($3 - $2) / s * 86400 }')
# The history of part 5: these daily rates, scaled down if 30 days of them would be more rows than
# this machine can generate inside the time budget (HISTORY_CAP rows, ~1 minute).
measured_total=$(join <(sort <<<"$rows_before") <(sort <<<"$rows_after") | awk -v s="$change_secs" -v d="$HISTORY_DAYS" '{ t += ($3 - $2) / s * 86400 * d } END { printf "%.0f", t }')
history_scale=$(awk -v t="$measured_total" -v c="$HISTORY_CAP" 'BEGIN { printf "%.4f", (t > c ? c / t : 1) }')
per_day_args=$(join <(sort <<<"$rows_before") <(sort <<<"$rows_after") | awk -v s="$change_secs" -v f="$history_scale" '{ printf "-v %s=%.0f ", $1, ($3 - $2) / s * 86400 * f }')
# Buckets analyze_lock_waits() makes of that window (distinct waited-for targets; once an hour in the daemon).
analysis_buckets=$(q -d lv_vault -c "SELECT greatest(1, count(*)) FROM lock_monitoring.analyze_lock_waits('$change_from', '$change_to')")
episodes_per_day=$(awk -v n="$(( LAT_BLOCKING + LAT_DEADLOCKS ))" -v s="$change_secs" 'BEGIN { printf "%.0f", n / s * 86400 }')
bytes_per_episode=$(awk -v b="${w_est[change]}" -v n="$(( LAT_BLOCKING + LAT_DEADLOCKS ))" 'BEGIN { printf "%.0f", b / n }')
wal_per_episode=$(awk -v b="${w_wal[change]}" -v n="$(( LAT_BLOCKING + LAT_DEADLOCKS ))" 'BEGIN { printf "%.0f", b / n }')
episodes_in_budget=$(awk -v b="$bytes_per_episode" 'BEGIN { printf "%.0f", (b > 0 ? 20 * 1048576 / b : 0) }')
episode_vault_verdict=$(awk -v b="$bytes_per_episode" 'BEGIN { print (b <= 3072 ? "met" : "MISSED") }')
episode_wal_verdict=$(awk -v b="$wal_per_episode" 'BEGIN { print (b <= 5120 ? "met" : "MISSED") }')

mark "storage, latency and footprint"
# ---------------------------------------------------------------------------------------------
echo "==> 5. dashboard queries over ${HISTORY_DAYS} days of synthetic history"
q -c "CREATE DATABASE lv_history"
"${lockvault[@]}" migrate --dsn dbname=lv_history >/dev/null
t_hist=$(date +%s)
# The history's days get their partitions first, as the daemon would have created them.
q -d lv_history -c "SELECT count(*) FROM lock_monitoring.create_history_partitions(current_date - $HISTORY_DAYS - 1, current_date + 8)" >/dev/null
# shellcheck disable=SC2086
q -d lv_history -v days="$HISTORY_DAYS" -v analysis_buckets="$analysis_buckets" $per_day_args -f bench/history.sql >"$work/history.out"
t_hist=$(( $(date +%s) - t_hist ))
history_rows=$(table_rows lv_history | awk '$2 > 0 { printf "%s %s, ", $1, $2 }' | sed 's/, $//')
history_bytes=$(q -d lv_history -c "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'lock_monitoring' AND c.relkind = 'r'")
dashboards_md=$("$bench" dashboards --vault-db lv_history --rounds "$DASH_ROUNDS")

mark "history and dashboards"
# ---------------------------------------------------------------------------------------------
echo "==> 7. fleet: many clusters, one vault"
fleet_md=$(bench/fleet.sh "$bench" "$lv" ${mode:+$mode})
mark "fleet"
t_total=$(( $(date +%s) - t_begin ))

# ---------------------------------------------------------------------------------------------
out=docs/benchmarks.md
[[ $mode == --smoke ]] && out=$work/benchmarks.md
{
    echo "# lockvault benchmarks"
    echo
    echo "Produced by \`bench/run.sh${mode:+ $mode}\` on $started, in one run of $(( t_total / 60 )) min $(( t_total % 60 )) s, with the $build_config build"
    echo "($phase_times)."
    echo
    echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB, a shared virtual machine (its speed varies between runs: compare ratios within one run);"
    echo "$(q -c 'SELECT version()' | cut -d, -f1); $(swift --version 2>&1 | head -1)."
    echo "Private cluster started by the script (unix socket, \`fsync = off\`, \`synchronous_commit = off\`,"
    echo "\`full_page_writes = off\` as in the test cluster; \`deadlock_timeout = 1s\`). The daemon is the real \`lockvault run\`"
    echo "with the defaults of \`etc/lockvault.yaml\` (1 Hz, \`lock_hold_threshold_seconds: 5\`), its vault in the monitored cluster,"
    echo "except that it logs at debug level: one JSON line per cycle, which the bench reads for cycle counts and times."
    echo
    echo "## 1. Snapshot cost"
    echo
    echo "lockvault's per-cycle statement (\`SnapshotQuery\`) against issue 16's references — **A** = \`SELECT count(*) FROM"
    echo "pg_stat_activity WHERE wait_event_type = 'Lock'\` (the least any sampler must read), **B** = \`SELECT pid,"
    echo "pg_blocking_pids(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock'\`, **L** = \`SELECT count(*) FROM pg_locks\`"
    echo "(the old floor) — and, at the scales of issue 7, the PostgreSQL wiki's pg_locks self-join and a pg_activity-style"
    echo "three-way self-join; interleaved in shuffled order in one monitoring session, lockvault's statement prepared as the"
    echo "daemon runs it, with real sessions holding real locks (ACCESS SHARE on many tables inside open transactions, all"
    echo "older than the 5 s hold threshold; waiters queued behind an ACCESS EXCLUSIVE holder, or in the worst case behind"
    echo "a row blocker). Ratios are of medians taken in the same run. Three lockvault rows:"
    echo
    echo "- **steady cycle** — 59 cycles in 60: the previous cycle's capture time and the long transactions already read"
    echo "  are passed in, so only backends that matter *and* changed come back as JSON (waiters, their blockers, long"
    echo "  transactions new or whose state changed, their parallel groups), plus counts; pg_locks is read only when someone"
    echo "  waits (or a transaction newly crossed the threshold);"
    echo "- **lock-table cycle** — once a minute: one pass over pg_locks for the lock-table usage and a fingerprint per pid;"
    echo "  long transactions whose fingerprint moved are read again (here none moved); every session's database is re-read;"
    echo "- **first cycle** — nothing known yet: every backend that matters and every lock of every long transaction."
    echo
    echo "\"Per cycle\" below is (59 × steady + lock-table cycle) / 60. With waiters, the steady cycle is one where every waiter"
    echo "is the same as last cycle (same pid, backend_start, query_start, wait_event and pg_blocking_pids()): pg_locks is not"
    echo "read. A fourth row, **new waits**, is the steady cycle with the waiters not known yet: it reads pg_locks."
    echo
    echo "$snapshot_md"
    echo
    echo "Reading these numbers:"
    echo
    echo "- Nobody waiting: pg_locks is not read, and pg_stat_activity is read once and only counted except for the"
    echo "  backends that matter and changed; the cluster's identity, version and lock-table capacity are read once per"
    echo "  connection. What remains above A is the statement's own shape (CTEs over pg_stat_activity, the known long"
    echo "  transactions' JSON parameter, pg_prepared_xacts, pg_stat_database)."
    echo "- Same waiters as last cycle: pg_blocking_pids() per waiter (that is B) and no pg_locks read; the waiters' and"
    echo "  their blockers' lock rows are carried from the cycle that read them (\`SamplerMemory\`). New waits, a new or"
    echo "  changed blocker set, or the once-a-minute lock-table cycle read pg_locks once (filtered during the scan to"
    echo "  waiting locks and their blockers'), about B + L."
    echo "- What a DBA sees late: a long transaction that blocks nobody has its pg_stat_activity row re-read only when its"
    echo "  \`state\` changes (\`state_change\`), so its \`wait_event\` while a long statement runs is the one it had when the"
    echo "  statement began (lock waits are never late: a waiter is always re-read). A waiter whose statement, after one lock"
    echo "  was granted, waits for another lock of the same kind behind the same blockers keeps the first lock's target and"
    echo "  \`waitstart\` until the next lock-table cycle, at most a minute (who blocks whom is never late: pg_blocking_pids()"
    echo "  runs every cycle). Non-blocking locks of prepared transactions are absent from cycles that don't read pg_locks, as"
    echo "  they already were from quiet cycles. Locks a long transaction takes after it"
    echo "  was first read appear in the vault up to a minute late (at once if they block someone), as before."
    echo "- The vault side: the daemon sends \`record_cycle()\` only the locks and blockers that changed since its last"
    echo "  successful write, and makes no call at all in a cycle where nothing changed (part 3, \"The vault's cost per cycle\")."
    echo
    echo "## 2. Workload overhead"
    echo
    echo "pgbench ($PGB_CLIENTS clients, 2 threads, ${PGB_SECONDS} s per run) on the same cluster, without and with the daemon at 1 Hz,"
    echo "alternating off/on, $PGB_PAIRS pairs; \`VACUUM ANALYZE\` and \`CHECKPOINT\` before every run."
    echo "\`tpcb\`: the built-in TPC-B-like script at scale $PGB_SCALE. The contention-heavy script is part 2b."
    echo
    echo "| workload | pair | daemon | TPS |"
    echo "|---|---:|---|---:|"
    echo -n "$workload_rows"
    echo
    echo "| workload | mean TPS off | mean TPS on | on / off | target | | spread of the off runs (max−min)/mean | daemon + its sessions, % of machine CPU |"
    echo "|---|---:|---:|---:|---:|---|---:|---:|"
    echo -n "$workload_summary"
    echo
    echo -n "$workload_notes"
    echo
    echo "When the off runs alone differ by more than the 0.5 % the target allows (\"not resolved\"), the TPS ratio can't"
    echo "confirm or refute it on this shared 2-core machine; the CPU the daemon and its sessions take (last column; a"
    echo "CPU-bound workload can lose at most about that share of its TPS) is the steadier measure of its cost."
    echo
    echo "## 2b. Observer effect (issue 16)"
    echo
    echo "The contention-heavy script \`hot\` — each transaction updates one of 4 hot rows and holds it 1 ms — with"
    echo "$HOT_CLIENTS sessions, so about $(( HOT_CLIENTS - 4 )) of them wait on a row at any moment and every daemon cycle calls"
    echo "\`pg_blocking_pids()\` for each of them and reads pg_locks. Daemon off and on (the real \`lockvault run\` at 1 Hz, started"
    echo "and ready before its run) in ABBA order, $HOT_PAIRS pairs of ${HOT_SECONDS} s; \`VACUUM ANALYZE bench_hot\` and \`CHECKPOINT\` before"
    echo "every run. The cost is 1 − mean(on/off) over the pairs, with a 95 % CI from Student's t over the pair ratios."
    echo
    echo "$observer_md"
    echo
    echo "## 2c. Daemon CPU (issue 16's overhead verdict)"
    echo
    echo "utime + stime from \`/proc/PID/stat\` of the daemon and of its server sessions (\`application_name = 'lockvault'\`),"
    echo "over the window, as % of one core."
    echo
    echo "$cpu_md"
    echo
    echo "## 3. Storage growth and WAL per cycle"
    echo
    echo "Vault bytes, measured: the change in the sum of \`pg_total_relation_size\` over the \`lock_monitoring\` tables (with"
    echo "indexes and TOAST) — page-granular, so a 60-second window shows 0, 8192 or 16384. Estimated: rows added to each"
    echo "table × that table's bytes per row (its total size less index metapages / its rows, at the end of part 3); MB/day and"
    echo "verdict extrapolate the estimate to a day. WAL: \`pg_current_wal_lsn()\` delta over the window — the whole"
    echo "cluster's WAL, so it also counts autovacuum and checkpoints (the script vacuums and checkpoints before the first"
    echo "window so that there is little left for them); the workloads themselves write none (they take no transaction id). Cycles: the daemon's own count. Windows: a quiet cluster (nothing but the daemon); a steady"
    echo "blocker (an active session holding EXCLUSIVE on a table, one waiter, measured from 12 s to $(( 12 + STEADY_S )) s after it"
    echo "began, when nothing about it changes); the worst case (2c's window, below), steady; blockers coming and going (part 4's trials)."
    echo
    echo "| window | seconds | cycles | vault rows added | vault bytes, measured | vault bytes, estimated | MB/day at this rate | < 20 MB/day | WAL bytes | WAL bytes per cycle | of pg_ash's 29 KiB per sample |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"
    echo -n "$storage_rows"
    echo
    echo "When nothing changes, what lockvault writes is the heartbeat: one \`monitor_cycle_s\` row a minute (~$hb_row bytes"
    echo "+ line pointer + primary-key entry, ~$hb_day MB/day), and the WAL per cycle is that row and its predecessor's"
    echo "end date spread over 60 cycles, plus whatever autovacuum and checkpoints wrote in the window."
    echo
    echo "Coming and going: $(( LAT_BLOCKING + LAT_DEADLOCKS )) episodes (blocking situations and deadlocks) in $change_secs s, i.e. $episodes_per_day a day"
    echo "at this rate — far more than a healthy cluster. Per episode: $bytes_per_episode vault bytes, $wal_per_episode WAL bytes, so 20 MB/day"
    echo "holds about $episodes_in_budget such episodes a day. Rows added in that window, and per day at that rate:"
    echo
    echo "| table | rows added | rows/day at this rate |"
    echo "|---|---:|---:|"
    echo "$growth_rows"
    echo
    echo "| per blocking episode (coming and going) | measured | target | |"
    echo "|---|---:|---:|---|"
    echo "| vault bytes | $bytes_per_episode | ≤ 3072 | $episode_vault_verdict |"
    echo "| WAL bytes | $wal_per_episode | ≤ 5120 | $episode_wal_verdict |"
    echo
    echo "### The vault's cost per cycle"
    echo
    echo "The daemon sends only what changed since its last successful write (LockvaultCore \`VaultChanges\`): a cycle in"
    echo "which nothing changed makes no call to the vault, except for the once-a-minute heartbeat of \`monitor_cycle_s\`."
    echo "Counted from \`pg_stat_user_functions\` (\`track_functions = pl\` on the vault database), so a window may be off by"
    echo "the one call a session had not reported yet. The worst case is 2c's window: 150 sessions idle in transaction holding"
    echo "ACCESS SHARE on 20 tables each, 40 idle, a row blocker with 10 waiters ($wc_locks locks in the cluster), from 10 s"
    echo "after the daemon started, for ${CPU_S} s."
    echo
    echo "| window | seconds | cycles | record_cycle calls | calls per cycle | record_cycle ms | ms per cycle | target | |"
    echo "|---|---:|---:|---:|---:|---:|---:|---|---|"
    echo -n "$vault_call_rows"
    echo
    echo
    echo "## 4. Detection latency"
    echo
    echo "The real daemon at 1 Hz; a poller reads the dashboard every 10 ms. Blocking trials alternate an advisory-lock"
    echo "wait and a relation-lock wait; each starts after a random 0–1 s pause, so starts fall anywhere in the cycle."
    echo "A blocking trial is seen when its holder's pid appears in \`blocking_sessions_dashboard\`; a deadlock trial"
    echo "(two sessions taking two advisory locks in opposite order; the cycle closes when the second one asks) when a"
    echo "new row appears in \`deadlock_events_dashboard\`. $LAT_DEADLOCKS deadlock trials (not 50) to keep the run under 20 minutes."
    echo
    echo "$latency_md"
    echo
    echo "## 5. Dashboard queries over ${HISTORY_DAYS} days of history"
    echo
    echo "A separate vault (\`lv_history\`, migrated by \`lockvault migrate\`) filled by \`bench/history.sql\` with ${HISTORY_DAYS} days of"
    if [[ $history_scale == 1.0000 ]]; then
        echo "rows at the daily volume measured in part 3's coming-and-going window (rows/day per table above), shaped like"
    else
        echo "rows at $(awk -v f="$history_scale" 'BEGIN { printf "%.1f", 100 * f }') % of the daily volume measured in part 3's coming-and-going window (rows/day per table above:"
        echo "$measured_total rows over ${HISTORY_DAYS} days at 100 %, more than this machine generates inside the 20-minute budget; that rate is"
        echo "$episodes_per_day episodes a day, so this is still $(awk -v f="$history_scale" -v e="$episodes_per_day" 'BEGIN { printf "%.0f", f * e }') a day), shaped like"
    fi
    echo "the daemon's: hubs with SHA-256 keys, closed satellite rows spread over the period, a few current ones;"
    echo "deadlock events, analysis buckets and resolve decisions never close. Generated in $t_hist s: $history_rows rows;"
    echo "$history_bytes; $analysis_buckets analysis buckets an hour (distinct waited-for targets in part 3). Each query up to $DASH_ROUNDS times (at most ~30 s in all), interleaved."
    echo
    echo "$dashboards_md"
    echo
    echo "## 6. Daemon footprint"
    echo
    echo "Over the ${fp_secs} s of parts 3 and 4 (quiet, steady blocker, coming and going) — not the 10 minutes the issue asks"
    echo "for, which the 20-minute budget can't hold on its own."
    echo
    echo "| measure | value |"
    echo "|---|---:|"
    echo "| RSS at start / end / max (VmRSS) | $(( fp_rss0 / 1024 )) / $(( fp_rss1 / 1024 )) / $(( rss_max / 1024 )) MiB |"
    echo "| daemon CPU (utime+stime), % of one core | $fp_cpu % |"
    echo "| lockvault's server sessions' CPU, % of one core | $fp_be_cpu % |"
    echo "| cycle time (daemon's own measure) | $cycle_ms |"
    echo
    echo "$fleet_md"
} >"$out"
echo "==> wrote $out ($(( t_total / 60 )) min $(( t_total % 60 )) s)"
[[ $mode == --smoke ]] && cat "$out"
true
