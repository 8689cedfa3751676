# Sourced by bench/run.sh after part 2 (uses its start_daemon, stop_daemon, ticks, lv_backend_ticks,
# cycles, pgbench_tps, rc_begin/rc_end, window_begin/window_end, m, now, q, $pgbench, $work, $bench):
#   2b. observer effect — the contention-heavy script (hot.sql) with HOT_CLIENTS sessions, so
#       that ~HOT_CLIENTS - 4 of them wait at any moment; daemon off/on in ABBA order, HOT_PAIRS
#       pairs of HOT_SECONDS s (the report: the TPS ratio per pair, its mean and 95 % CI);
#   2c. daemon CPU — utime+stime of the daemon and of its server sessions from /proc: during the
#       "on" runs of 2b (steady contention) and over CPU_S s of the sampler's worst case
#       (lockvault-bench worstcase: 150 idle in transaction × 20 ACCESS SHARE, 40 idle, one row
#       blocker with 10 waiters), which is also part 3's "worst" storage window.
# Writes raw measurements only (hot_pair, hot_on, rc.hot, worst, worst_locks, worst-daemon.log).

echo "==> 2b. observer effect: hot.sql, $HOT_CLIENTS sessions, $HOT_PAIRS pairs of ${HOT_SECONDS} s (ABBA)"
for pair in $(seq 1 "$HOT_PAIRS"); do
    if (( pair % 2 == 1 )); then order="off on"; else order="on off"; fi
    declare -A pair_tps=()
    for daemon in $order; do
        q -d lv_work -c "VACUUM ANALYZE bench_hot" -c "CHECKPOINT"
        if [[ $daemon == on ]]; then
            start_daemon; rc_begin; sleep 0.4
            d0=$(ticks "$daemon_pid"); b0=$(lv_backend_ticks); wall0=$(now); c0=$(cycles)
        fi
        out=$("$pgbench" -n -f "$work/hot.sql" -c "$HOT_CLIENTS" -j 2 -T "$HOT_SECONDS" lv_work 2>&1)
        if [[ $daemon == on ]]; then
            # The daemon's ticks, its sessions' ticks, the clock window, cycles in it.
            m hot_on "$(( $(ticks "$daemon_pid") - d0 )) $(( $(lv_backend_ticks) - b0 )) $wall0 $(now) $(( $(cycles) - c0 ))"
            rc_end hot
            stop_daemon
        fi
        pair_tps[$daemon]=$(pgbench_tps "$out")
    done
    echo "    pair $pair ($order): off ${pair_tps[off]} on ${pair_tps[on]} tps"
    m hot_pair "$pair ${pair_tps[off]} ${pair_tps[on]} $order"
done

echo "==> 2c. daemon CPU in the worst case, ${CPU_S} s"
mkfifo "$work/worst.in"
"$bench" worstcase --db lv_work --backends 200 --waiters 10 <"$work/worst.in" >"$work/worst.out" 2>&1 &
worst_pid=$!
exec {worst_fd}>"$work/worst.in"
for _ in $(seq 1 600); do grep -q '^ready' "$work/worst.out" && break; sleep 0.1; done
grep -q '^ready' "$work/worst.out" || { echo "worst-case load did not stand up:" >&2; cat "$work/worst.out" >&2; exit 1; }
m worst_locks "$(q -c "SELECT count(*) FROM pg_locks")"
start_daemon
sleep 10   # past the first cycle (which reads every long transaction's locks once) and the 5 s hold threshold
# The same window is part 3's "worst" row (vault rows, bytes, WAL, record_cycle calls).
window_begin worst; rc_begin
d0=$(ticks "$daemon_pid"); b0=$(lv_backend_ticks); w0=$(now); c0=$(cycles)
sleep "$CPU_S"
m worst "$d0 $(ticks "$daemon_pid") $b0 $(lv_backend_ticks) $w0 $(now) $c0 $(cycles)"
rc_end worst; window_end worst
# LOCKVAULT_BENCH_PERF=FILE: after the window (so it doesn't count), profile the daemon for 20 s
# with perf and write the flat report to FILE.
if [[ -n ${LOCKVAULT_BENCH_PERF:-} ]] && command -v perf >/dev/null; then
    perf record -q -F 999 -g -o "$work/perf.data" -p "$daemon_pid" -- sleep 20 >/dev/null 2>&1 || true
    perf report -q -i "$work/perf.data" --no-children --percent-limit 0.5 --stdio -g none >"$LOCKVAULT_BENCH_PERF" 2>/dev/null || true
fi
stop_daemon
cp "$work/daemon.log" "$work/worst-daemon.log"
exec {worst_fd}>&-
wait "$worst_pid" || true
