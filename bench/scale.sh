#!/usr/bin/env bash
# Cost against the locks a cluster holds: 200 backends, each idle in a transaction holding ACCESS
# SHARE on 20, 200 and 2,000 partitions of one partitioned table (a cluster whose queries touch
# partitioned tables holds a lock per partition), with no new lock waits and with 10 new row-lock
# waits a second (each lasts 2 s). In every stage four arms run side by side, in a shuffled order:
# off; B, `pid, pg_blocking_pids(pid)` of every Lock waiter at 1 Hz; L, `count(*) FROM pg_locks`
# at 1 Hz; lockvault (`lockvault run`, default configuration, vault in the monitored cluster).
# For each: CPU of the client process and of its server sessions (/proc/PID/schedstat), and RSS.
# Prints the markdown for docs/benchmarks.md (lockvault-bench scale-report computes it).
#
#   bench/scale.sh [SECONDS]     SECONDS per arm and stage (default 30; about 15 minutes)
#   bench/scale.sh --smoke       20 backends, 20 and 200 locks each, 5 s per arm (a minute or two)
#
# A private cluster (.pgdata-scale on port 54346, max_locks_per_transaction raised to hold the
# largest stage), removed at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds=30 backends=200 sizes="20 200 2000" partitions=2000 rates="0 10" label=""
if [[ ${1:-} == --smoke ]]; then seconds=5 backends=20 sizes="20 200" partitions=200 label=" (smoke)"; shift; fi
if [[ -n ${1:-} ]]; then seconds=$1; fi
[[ $seconds =~ ^[0-9]+$ && $seconds -ge 1 ]] || { echo "usage: $0 [--smoke] [SECONDS]" >&2; exit 2; }
scratch=${LOCKVAULT_BENCH_SCRATCH:-.build-bench}
swift build -c release --scratch-path "$scratch" --product lockvault 2>&1 | tail -1 >&2
swift build -c release --scratch-path "$scratch" --product lockvault-bench 2>&1 | tail -1 >&2
bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path)
read -r -a lockvault <<<"env $(compgen -e | sed -n 's/^\(LOCKVAULT_.*\)/-u \1/p' | tr '\n' ' ') $bin/lockvault"
work=$(mktemp -d /tmp/lockvault-scale.XXXXXX)
largest=0; for s in $sizes; do (( s > largest )) && largest=$s; done

cluster() { env LOCKVAULT_PGDATA="$(pwd)/.pgdata-scale" LOCKVAULT_PGPORT=54346 LOCKVAULT_PG_MAX_CONNECTIONS=400 scripts/pg-cluster.sh "$@"; }
sampler_pid= daemon_pid= load_pid=
cleanup() {
    [[ -n $daemon_pid ]] && { kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null; }
    [[ -n $sampler_pid ]] && { kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null; }
    [[ -n $load_pid ]] && { kill "$load_pid" 2>/dev/null; wait "$load_pid" 2>/dev/null; }
    cluster destroy >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
cluster destroy >/dev/null 2>&1 || true
cluster start >&2
eval "$(cluster env)"
q() { psql -XAtq -v ON_ERROR_STOP=1 "$@"; }
# The shared lock table holds max_locks_per_transaction × (max_connections + max_prepared_transactions).
q -c "ALTER SYSTEM SET max_locks_per_transaction = $(( largest + 100 ))"
cluster restart >&2
q -c "CREATE DATABASE lv_work" -c "CREATE DATABASE lv_vault"
"${lockvault[@]}" migrate --dsn "host=$PGHOST port=$PGPORT dbname=lv_vault" >/dev/null
printf 'target:\n  dsn: "host=%s port=%s dbname=lv_vault"\nvault:\n  dsn: "host=%s port=%s dbname=lv_vault"\nlogging:\n  destination: json\n' \
    "$PGHOST" "$PGPORT" "$PGHOST" "$PGPORT" >"$work/lockvault.yaml"
"${lockvault[@]}" check-config --config "$work/lockvault.yaml" >/dev/null
B_SQL="SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity WHERE wait_event_type = 'Lock';"
L_SQL="SELECT count(*) FROM pg_locks;"

cpu_ns() {  # PID → nanoseconds its threads have run on a CPU (/proc/PID/task/*/schedstat, first field: the 10 ms
            # ticks of /proc/PID/stat cannot tell a 1 Hz sampler from nothing in a short window; the daemon
            # works on threads of its own); 0 when gone
    local t=0 f s
    for f in /proc/"$1"/task/*/schedstat; do s=$(cat "$f" 2>/dev/null) || continue; t=$(( t + ${s%% *} )); done
    echo "$t"
}
rss() {     # PID → VmRSS in KiB; 0 when gone
    local r; r=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status" 2>/dev/null) || true; echo "${r:-0}"
}
app_pids() { q -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$1'"; }
session_ns() { local t=0 p; for p in $(app_pids "$1"); do t=$(( t + $(cpu_ns "$p") )); done; echo "$t"; }
session_rss() { local t=0 p; for p in $(app_pids "$1"); do t=$(( t + $(rss "$p") )); done; echo "$t"; }
start_arm() {   # sets client_pid and app
    case $1 in
        off) client_pid= app=none ;;
        B|L)
            local sql=$B_SQL; [[ $1 == L ]] && sql=$L_SQL
            (while :; do echo "$sql"; sleep 1; done) | PGAPPNAME=bench-sampler psql -Xq -d lv_work -o /dev/null &
            sampler_pid=$! client_pid=$! app=bench-sampler
            until [[ -n $(app_pids bench-sampler) ]]; do sleep 0.1; done ;;
        lockvault)
            : >"$work/daemon.log"
            "${lockvault[@]}" run --config "$work/lockvault.yaml" >>"$work/daemon.log" 2>&1 &
            daemon_pid=$! client_pid=$! app=lockvault
            until grep -q '"lockvault ready"' "$work/daemon.log"; do kill -0 "$daemon_pid" || { cat "$work/daemon.log" >&2; exit 1; }; sleep 0.1; done
            sleep 6 ;;   # past the 5 s hold threshold: the holders' locks read once, then carried
    esac
}
stop_arm() {
    if [[ -n $daemon_pid ]]; then kill -TERM "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=; fi
    if [[ -n $sampler_pid ]]; then kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=; fi
    q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'bench-sampler'" >/dev/null
}

echo "==> load: $backends backends, $partitions partitions" >&2
mkfifo "$work/load.in"
"$bin/lockvault-bench" scale-load --db lv_work --backends "$backends" --partitions "$partitions" --wait-seconds 2 <"$work/load.in" >"$work/load.out" 2>&1 &
load_pid=$!
exec {load_fd}>"$work/load.in"
commands=0
send() {    # a command to the load; returns once it stands
    echo "$1" >&"$load_fd"; commands=$(( commands + 1 ))
    until [[ $(grep -c '^ready' "$work/load.out") -ge $commands ]]; do kill -0 "$load_pid" || { cat "$work/load.out" >&2; exit 1; }; sleep 0.2; done
}

echo "# locks	waits	arm	t0	t1	client_cpu_ns	server_cpu_ns	client_rss_kib	server_rss_kib	locks_in_use" >"$work/scale.tsv"
for size in $sizes; do
    send "locks $size"
    for rate in $rates; do
        send "waits $rate"
        sleep 3   # the first waits stand
        for arm in $(printf '%s\n' off B L lockvault | shuf); do
            start_arm "$arm"
            in_use=$(q -c "SELECT count(*) FROM pg_locks")
            c0=$(cpu_ns "${client_pid:-0}"); s0=$(session_ns "$app"); t0=$(date +%s.%N)
            sleep "$seconds"
            c1=$(cpu_ns "${client_pid:-0}"); s1=$(session_ns "$app"); t1=$(date +%s.%N)
            crss=$(rss "${client_pid:-0}"); srss=$(session_rss "$app")
            stop_arm
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$rate" "$arm" "$t0" "$t1" "$(( c1 - c0 ))" "$(( s1 - s0 ))" \
                "$crss" "$srss" "$in_use" >>"$work/scale.tsv"
            echo "    $size locks × $backends, $rate waits/s, $arm: $(( (c1 - c0 + s1 - s0) / 1000000 )) ms CPU, $in_use locks" >&2
        done
    done
done
send "waits 0"
exec {load_fd}>&-
wait "$load_pid" || true; load_pid=
[[ -n ${LOCKVAULT_BENCH_KEEP:-} ]] && cp "$work/scale.tsv" "$LOCKVAULT_BENCH_KEEP"

cat <<EOF
### Scale: cost against locks held$label

\`bench/scale.sh${label:+ --smoke} $seconds\` on $(date -u +%Y-%m-%d), PostgreSQL $(q -c "SHOW server_version"), $(nproc) cores; lockvault $(git rev-parse --short HEAD)
(release build, default configuration). $backends backends idle in transaction, each holding ACCESS SHARE on
$(echo "$sizes" | sed 's/ /, /g') partitions of a $partitions-partition table; new waits are row-lock waits that give up after 2 s.
Arms shuffled within each stage, $seconds s each; lockvault measured after a 6 s warm-up.

$("$bin/lockvault-bench" scale-report "$work/scale.tsv" --clk 1000000000)
EOF
