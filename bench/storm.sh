#!/usr/bin/env bash
# A contention storm, five arms side by side in one run: 100 pgbench clients updating 4 hot rows
# (each holds its row for 1 ms, so about 96 wait at any moment), with in every round, in a shuffled
# order: off; B, `pid, pg_blocking_pids(pid)` of every Lock waiter at 1 Hz (the least a sampler that
# names blockers does); the PostgreSQL wiki's pg_locks self-join at 1 Hz; lockvault with its vault
# in the monitored cluster; lockvault with its vault in a second cluster. Then the worst case
# (150 idle in transaction × 20 locks, 10 row waiters), a profile of the daemon's steady
# cycle in it, and the detection latency of 3 s waits. Prints the markdown for docs/benchmarks.md.
#
#   bench/storm.sh [ROUNDS [SECONDS]]      default 10 rounds, 10 s per arm (about 12 minutes)
#   LOCKVAULT_STORM_BEFORE=/path/to/an/earlier/lockvault bench/storm.sh …
#                                          adds a sixth arm, that binary with its own vault in the monitored
#                                          cluster (migrated by it), and its worst-case window after this one's:
#                                          the cost of a change, side by side
#
# Two private clusters (.pgdata-storm on port 54342, .pgdata-storm2 on 54344), removed at the end.
# The daemon runs with its default configuration (sampling.min_wait_seconds 1) but debug logging,
# whose one line per cycle says how many lock-manager passes the cycle made.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-10} seconds=${2:-10}
scratch=${LOCKVAULT_BENCH_SCRATCH:-.build-bench}
swift build -c release --scratch-path "$scratch" --product lockvault 2>&1 | tail -1 >&2
swift build -c release --scratch-path "$scratch" --product lockvault-bench 2>&1 | tail -1 >&2
bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path)
read -r -a lockvault <<<"env $(compgen -e | sed -n 's/^\(LOCKVAULT_.*\)/-u \1/p' | tr '\n' ' ') $bin/lockvault"
pgbench=$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)
work=$(mktemp -d /tmp/lockvault-storm.XXXXXX)
clk=$(getconf CLK_TCK)

cluster() { env LOCKVAULT_PGDATA="$(pwd)/.pgdata-storm$1" LOCKVAULT_PGPORT=$((54342 + ${1:-0})) LOCKVAULT_PG_MAX_CONNECTIONS=400 scripts/pg-cluster.sh "${@:2}"; }
sampler_pid= daemon_pid=
cleanup() {
    [[ -n $daemon_pid ]] && { kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null; }
    [[ -n $sampler_pid ]] && { kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null; }
    cluster "" destroy >/dev/null 2>&1 || true; cluster 2 destroy >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
for c in "" 2; do cluster "$c" destroy >/dev/null 2>&1 || true; cluster "$c" start >&2; done
eval "$(cluster "" env)"
host_a=$PGHOST port_a=$PGPORT
host_b=$(cluster 2 env | sed -n "s/.*PGHOST='\([^']*\)'.*/\1/p")
q() { psql -XAtq -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE DATABASE lv_work" -c "CREATE DATABASE lv_vault" -c "CREATE DATABASE lv_vault_before"
before=${LOCKVAULT_STORM_BEFORE:-}
arms=(off B wiki lockvault lockvault-remote)
if [[ -n $before ]]; then
    read -r -a lockvault_before <<<"env $(compgen -e | sed -n 's/^\(LOCKVAULT_.*\)/-u \1/p' | tr '\n' ' ') $before"
    "${lockvault_before[@]}" migrate --dsn "host=$host_a port=$port_a dbname=lv_vault_before" >/dev/null
    arms+=(lockvault-before)
fi
q -h "$host_b" -p 54344 -c "CREATE DATABASE lv_vault"
"${lockvault[@]}" migrate --dsn "host=$host_a port=$port_a dbname=lv_vault" >/dev/null
"${lockvault[@]}" migrate --dsn "host=$host_b port=54344 dbname=lv_vault" >/dev/null
q -d lv_work -c "CREATE TABLE bench_hot (id int PRIMARY KEY, n int)" -c "INSERT INTO bench_hot SELECT g, 0 FROM generate_series(1, 4) g"
printf '%s\n' '\set id random(1, 4)' 'BEGIN;' 'UPDATE bench_hot SET n = n + 1 WHERE id = :id;' 'SELECT pg_sleep(0.001);' 'END;' >"$work/hot.sql"
for arm in lockvault lockvault-remote ${before:+lockvault-before}; do
    vault="host=$host_a port=$port_a dbname=lv_vault"
    [[ $arm == lockvault-remote ]] && vault="host=$host_b port=54344 dbname=lv_vault"
    [[ $arm == lockvault-before ]] && vault="host=$host_a port=$port_a dbname=lv_vault_before"
    printf 'target:\n  dsn: "host=%s port=%s dbname=lv_vault"\nvault:\n  dsn: "%s"\nlogging:\n  level: debug\n  destination: json\n' \
        "$host_a" "$port_a" "$vault" >"$work/$arm.yaml"
    "${lockvault[@]}" check-config --config "$work/$arm.yaml" >/dev/null
done
B_SQL="SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock';"
WIKI_SQL="SELECT blocked_locks.pid AS blocked_pid, blocked_activity.usename AS blocked_user, blocking_locks.pid AS blocking_pid,
  blocking_activity.usename AS blocking_user, blocked_activity.query AS blocked_statement, blocking_activity.query AS current_statement_in_blocking_process
FROM pg_catalog.pg_locks blocked_locks
JOIN pg_catalog.pg_stat_activity blocked_activity ON blocked_activity.pid = blocked_locks.pid
JOIN pg_catalog.pg_locks blocking_locks ON blocking_locks.locktype = blocked_locks.locktype
  AND blocking_locks.database IS NOT DISTINCT FROM blocked_locks.database AND blocking_locks.relation IS NOT DISTINCT FROM blocked_locks.relation
  AND blocking_locks.page IS NOT DISTINCT FROM blocked_locks.page AND blocking_locks.tuple IS NOT DISTINCT FROM blocked_locks.tuple
  AND blocking_locks.virtualxid IS NOT DISTINCT FROM blocked_locks.virtualxid AND blocking_locks.transactionid IS NOT DISTINCT FROM blocked_locks.transactionid
  AND blocking_locks.classid IS NOT DISTINCT FROM blocked_locks.classid AND blocking_locks.objid IS NOT DISTINCT FROM blocked_locks.objid
  AND blocking_locks.objsubid IS NOT DISTINCT FROM blocked_locks.objsubid AND blocking_locks.pid != blocked_locks.pid
JOIN pg_catalog.pg_stat_activity blocking_activity ON blocking_activity.pid = blocking_locks.pid
WHERE NOT blocked_locks.granted;"

ticks() {   # PID → utime + stime (fields 14 and 15 of /proc/PID/stat, counted after the command's ")"); 0 when gone
    local s f; s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
    s=${s##*) }; read -r -a f <<<"$s"; echo $(( f[11] + f[12] ))
}
# CPU ticks of the server sessions with this application_name, on both clusters.
session_ticks() {
    local t=0 p
    for p in $(q -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$1'") $(q -h "$host_b" -p 54344 -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$1'"); do
        t=$(( t + $(ticks "$p") ))
    done
    echo "$t"
}
start_arm() {   # sets client_pid and app
    case $1 in
        off) client_pid= app=none ;;
        B|wiki)
            local sql=$B_SQL; [[ $1 == wiki ]] && sql=$WIKI_SQL
            (while :; do echo "$sql"; sleep 1; done) | PGAPPNAME=bench-sampler psql -Xq -d lv_work -o /dev/null &
            sampler_pid=$! client_pid=$! app=bench-sampler
            until [[ -n $(q -c "SELECT 1 FROM pg_stat_activity WHERE application_name = 'bench-sampler'") ]]; do sleep 0.1; done ;;
        lockvault*)
            : >"$work/daemon.log"
            local binary=("${lockvault[@]}"); [[ $1 == lockvault-before ]] && binary=("${lockvault_before[@]}")
            "${binary[@]}" run --config "$work/$1.yaml" >>"$work/daemon.log" 2>&1 &
            daemon_pid=$! client_pid=$! app=lockvault
            until grep -q '"lockvault ready"' "$work/daemon.log"; do kill -0 "$daemon_pid" || { cat "$work/daemon.log" >&2; exit 1; }; sleep 0.1; done
            sleep 1 ;;   # past the first cycle
    esac
}
stop_arm() {
    if [[ -n $daemon_pid ]]; then kill -TERM "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=; fi
    if [[ -n $sampler_pid ]]; then kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=; fi
    q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'bench-sampler'" >/dev/null
}
cycle_lines() { grep '"msg":"cycle"' "$work/daemon.log" 2>/dev/null || true; }
passes() {   # cycle lines → the lock-manager passes they made, added up
    local t=0 p
    for p in $(grep -o '"lock_manager_passes":"[0-9]*"' <<<"$1" | tr -dc '0-9\n'); do t=$(( t + p )); done
    echo "$t"
}

echo "# round	arm	tps	t0	t1	client_ticks	server_ticks	cycles	passes" >"$work/storm.tsv"
echo "==> $rounds rounds × ${#arms[@]} arms × $seconds s, shuffled" >&2
for round in $(seq 1 "$rounds"); do
    for arm in $(printf '%s\n' "${arms[@]}" | shuf); do
        q -d lv_work -c "VACUUM ANALYZE bench_hot" -c "CHECKPOINT"
        start_arm "$arm"
        c0=$(ticks "${client_pid:-0}"); s0=$(session_ticks "$app"); n0=$(cycle_lines | wc -l); t0=$(date +%s.%N)
        out=$("$pgbench" -n -f "$work/hot.sql" -c 100 -j 2 -T "$seconds" lv_work 2>&1)
        c1=$(ticks "${client_pid:-0}"); s1=$(session_ticks "$app"); t1=$(date +%s.%N)
        lines=$(cycle_lines | tail -n +$(( n0 + 1 )))
        cycles=$(grep -c . <<<"$lines" || true) arm_passes=$(passes "$lines")
        stop_arm
        tps=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p' <<<"$out")
        [[ -n $tps ]] || { echo "pgbench failed: $out" >&2; exit 1; }
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$arm" "$tps" "$t0" "$t1" "$(( c1 - c0 ))" "$(( s1 - s0 ))" \
            "${cycles:-0}" "${arm_passes:-0}" >>"$work/storm.tsv"
        echo "    round $round $arm: $tps tps" >&2
    done
done

echo "==> worst case: 150 idle in transaction × 20 locks, 10 row waiters" >&2
mkfifo "$work/worst.in"
"$bin/lockvault-bench" worstcase --db lv_work --backends 200 --waiters 10 <"$work/worst.in" >"$work/worst.out" 2>&1 &
worst_pid=$!
exec {worst_fd}>"$work/worst.in"
until grep -q '^ready' "$work/worst.out"; do kill -0 "$worst_pid" || { cat "$work/worst.out" >&2; exit 1; }; sleep 0.2; done
worst_locks=$(q -c "SELECT count(*) FROM pg_locks")
worst_window() {   # arm → the window's paragraph
    start_arm "$1"
    sleep 6   # past the 5 s hold threshold: every long transaction's locks read once, then carried
    c0=$(ticks "$daemon_pid"); s0=$(session_ticks lockvault); n0=$(cycle_lines | wc -l); t0=$(date +%s.%N)
    sleep 60
    c1=$(ticks "$daemon_pid"); s1=$(session_ticks lockvault); t1=$(date +%s.%N)
    worst_lines=$(cycle_lines | tail -n +$(( n0 + 1 )))
    stop_arm
    worst_cycles=$(grep -c . <<<"$worst_lines" || true)
    "$bin/lockvault-bench" storm-worst --clk "$clk" --readings "$c0 $c1 $s0 $s1 $t0 $t1 $worst_cycles $(passes "$worst_lines")"
}
worst_md=$(worst_window lockvault)
if [[ -n $before ]]; then
    # Alternated, two windows each, so that the machine's drift falls on both alike.
    b1=$(worst_window lockvault-before) a2=$(worst_window lockvault) b2=$(worst_window lockvault-before)
    worst_md="Windows 1 and 3, this build: $worst_md $a2

Windows 2 and 4, the binary before (\`$before\`): $b1 $b2"
fi

echo "==> profile: the daemon's steady cycle with $worst_locks locks (perf, 30 s)" >&2
# callgrind would count instructions, but valgrind 3.19 cannot run this toolchain's binaries
# (DWARF 5; with the debug info stripped it dies in the Swift runtime), and this machine has no
# hardware counters: perf samples the CPU clock instead, of the daemon and its target session.
start_arm lockvault
sleep 6
target_backend=$(q -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'lockvault' AND backend_type = 'client backend' ORDER BY backend_start LIMIT 1")
perf record -q -e cpu-clock -F 999 -g -o "$work/perf.data" -p "$daemon_pid,$target_backend" -- sleep 30 >/dev/null 2>&1 || true
profile_cycles=$(cycle_lines | wc -l)
stop_arm
profile=$(perf report -q -i "$work/perf.data" --no-children --sort comm,dso,symbol --percent-limit 1.5 --stdio -g none 2>/dev/null | grep -v '^$' | head -25 | sed 's/^/    /')
exec {worst_fd}>&-
wait "$worst_pid" || true

echo "==> detection latency of 3 s waits" >&2
start_arm lockvault
latency=$("$bin/lockvault-bench" latency --work-db lv_work --vault-db lv_vault --blocking 20 --deadlocks 0 --min-wait 1 2>/dev/null)
stop_arm

cat <<EOF
### Storm: ${#arms[@]} arms side by side ($rounds rounds, $seconds s each, shuffled per round)

\`bench/storm.sh $rounds $seconds\` on $(date -u +%Y-%m-%d), PostgreSQL $(q -c "SHOW server_version"), $(nproc) cores; lockvault $(git rev-parse --short HEAD)
(release build, default configuration: \`sampling.min_wait_seconds\` 1, 1 Hz; debug logging, one line a cycle).
TPS cost = 1 − arm / off of the same round, mean over the rounds with its 95 % CI; CPU from /proc (utime + stime), % of one core
over the arms' pgbench windows.

$("$bin/lockvault-bench" storm-report "$work/storm.tsv" --clk "$clk")

### Worst case: 150 idle in transaction × 20 ACCESS SHARE, 40 idle, 1 row blocker + 10 waiters ($worst_locks locks)

$worst_md

### Profile: the daemon's steady cycle in the worst case (perf, CPU clock, 30 s, about $profile_cycles cycles; self time, ≥ 1.5 %)

$profile

### Detection latency of a 3 s wait (target p99 ≤ min_wait_seconds + 1.5 s = 2500 ms)

$latency
EOF
