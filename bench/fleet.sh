#!/usr/bin/env bash
# The fleet part of the benchmarks (issue 17), called by bench/run.sh with the benchmark cluster
# running and PG* pointing at it; prints the markdown section for docs/benchmarks.md.
#
#   bench/fleet.sh BENCH_BINARY LOCKVAULT_BINARY [--smoke]
#
# Environment: FLEET_CLUSTERS (200), FLEET_SECONDS (40 s of replay), FLEET_DAYS (30 days of
# history), FLEET_HISTORY_CAP (rows copied into the history, 3 000 000), FLEET_DASH_ROUNDS (51).
#
# 1. real cycles recorded by lockvault's Monitor in lv_fleet_work (quiet, a steady blocker,
#    blockers coming and going, deadlocks); 2. FLEET_CLUSTERS threads replay them at 1 Hz into
#    one vault (lv_fleet), each on its own connection, through CycleWriter (record_cycle); write
#    latency, the vault backends' CPU (/proc), WAL and bytes over the replay; 3. the replay's rows
#    copied back over FLEET_DAYS days (bench/fleet-history.sql); every dashboard and
#    fleet_dashboard timed over them; 4. retention of the oldest day: the DELETE of the
#    cleanup_old_data before partitioning (Tests/Fixtures/vault-v2, run in a transaction rolled
#    back), then today's cleanup_old_data (partitions), over the same rows.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bench=$1 lv=$2 mode=${3:-}
if [[ $mode == --smoke ]]; then
    CLUSTERS=${FLEET_CLUSTERS:-20} SECONDS_=${FLEET_SECONDS:-10} DAYS=${FLEET_DAYS:-3} CAP=${FLEET_HISTORY_CAP:-100000} ROUNDS=${FLEET_DASH_ROUNDS:-11}
else
    CLUSTERS=${FLEET_CLUSTERS:-200} SECONDS_=${FLEET_SECONDS:-40} DAYS=${FLEET_DAYS:-30} CAP=${FLEET_HISTORY_CAP:-3000000} ROUNDS=${FLEET_DASH_ROUNDS:-51}
fi
q() { psql -XAtq -v ON_ERROR_STOP=1 "$@"; }
read -r -a lockvault <<<"env $(compgen -e | sed -n 's/^\(LOCKVAULT_.*\)/-u \1/p' | tr '\n' ' ') $lv"
work=$(mktemp -d /tmp/lockvault-fleet.XXXXXX)
trap 'rm -rf "$work"' EXIT
t0=$(date +%s)

q -c "DROP DATABASE IF EXISTS lv_fleet" -c "DROP DATABASE IF EXISTS lv_fleet_work" -c "CREATE DATABASE lv_fleet" -c "CREATE DATABASE lv_fleet_work"
"${lockvault[@]}" migrate --dsn dbname=lv_fleet >/dev/null
# The vault as it is after $DAYS days: a partition a day (the history is copied into them later). Every statement on
# current rows reads every partition, so the writes are measured with all of them there, not on a new vault.
q -d lv_fleet -c "SELECT count(*) FROM lock_monitoring.create_history_partitions((now() AT TIME ZONE 'UTC')::date - $DAYS - 1, (now() AT TIME ZONE 'UTC')::date + 8)" >/dev/null
echo "  fleet: recording real cycles, then $CLUSTERS clusters at 1 Hz for $SECONDS_ s" >&2
replay=$("$bench" fleet --work-db lv_fleet_work --vault-db lv_fleet --clusters "$CLUSTERS" --seconds "$SECONDS_")
val() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$replay"; }
recorded=$(sed -n 's/.*recorded="\([^"]*\)".*/\1/p' <<<"$replay")
t_replay=$(( $(date +%s) - t0 ))

q -d lv_fleet -c "ANALYZE" >/dev/null
replay_rows=$(q -d lv_fleet -c "SELECT sum(c.reltuples)::bigint FROM pg_class c WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind = 'r'")
copies=$(awk -v cap="$CAP" -v r="$replay_rows" -v d="$DAYS" 'BEGIN { c = int(cap / (r > 0 ? r : 1)); m = d * 24; if (c > m) c = m; if (c < d) c = d; print c }')
echo "  fleet: $DAYS days of history ($copies copies of $replay_rows rows)" >&2
t1=$(date +%s)
q -d lv_fleet -v copies="$copies" -v days="$DAYS" -f bench/fleet-history.sql >/dev/null
t_hist=$(( $(date +%s) - t1 ))
history_rows=$(q -d lv_fleet -c "SELECT sum(c.reltuples)::bigint FROM pg_class c WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind = 'r'")
history_size=$(q -d lv_fleet -c "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind = 'r'")
partitions=$(q -d lv_fleet -c "SELECT count(*) FROM lock_monitoring.history_partitions()")
echo "  fleet: dashboards" >&2
fleet_dash_row=$("$bench" fleet-dashboard --vault-db lv_fleet --rounds "$ROUNDS")
dashboards_md=$("$bench" dashboards --vault-db lv_fleet --rounds "$ROUNDS")
fleet_rows=$(q -d lv_fleet -c "SELECT count(*) || ' rows (' || count(*) FILTER (WHERE state = 'alive') || ' alive)' FROM lock_monitoring.fleet_dashboard")

echo "  fleet: retention, DELETE then partitions" >&2
retention=$(( DAYS - 1 ))
# Its cutoff moved back to the UTC midnight before it: the day boundary the partitions are dropped at, so that both
# remove the same satellite rows (all rows closed before that midnight).
sed -e 's/lock_monitoring\.cleanup_old_data(/pg_temp.cleanup_by_delete(/g' -e '/cleanup_old_history/d' \
    -e "s/v_cutoff := now() - make_interval(days => retention_days);/v_cutoff := date_trunc('day', (now() - make_interval(days => retention_days)) AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';/" \
    Tests/Fixtures/vault-v2/functions/cleanup_old_data.sql >"$work/cleanup_by_delete.sql"
dead_sql="SELECT coalesce(sum(n_dead_tup), 0) FROM pg_stat_user_tables WHERE schemaname = 'lock_monitoring'"
dead_hub_sql="$dead_sql AND relname ~ '_[hl]\$'"
q -d lv_fleet -c "VACUUM" >/dev/null
sleep 1
dead_before=$(q -d lv_fleet -c "$dead_sql") dead_hub_before=$(q -d lv_fleet -c "$dead_hub_sql")
# DELETE, as before partitioning: measured, then rolled back, so both run over the same rows.
read -r del_ms del_wal del_rows < <(q -d lv_fleet -F ' ' <<SQL
BEGIN;
\i $work/cleanup_by_delete.sql
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS c0 \gset
SELECT sum(rows_deleted) AS n FROM pg_temp.cleanup_by_delete($retention) \gset
SELECT round(extract(epoch FROM clock_timestamp() - :'c0'::timestamptz) * 1000), pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'l0'), :n;
ROLLBACK;
SQL
)
# Partitions: today's retention as the daemon runs it (RetentionRun, through lockvault-bench): retention_drop in a
# transaction of its own, retention_sweep batches (each holding the hub lock: what a writer may wait for), then the
# VACUUM of every table it may have DELETEd from. WAL from before to after.
wal0=$(q -d lv_fleet -c "SELECT pg_current_wal_insert_lsn()")
ret_line=$("$bench" retention --vault-db lv_fleet --days "$retention")
rv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$ret_line"; }
part_wal=$(q -d lv_fleet -c "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$wal0')")
part_rows=$(rv rows) part_dropped=$(rv partitions) part_ms=$(rv drop_ms) sweep_ms=$(rv sweep_ms) batches=$(rv batches)
longest_ms=$(rv longest_batch_ms) vac_ms=$(rv vacuum_ms)
ret_ms=$(( part_ms + sweep_ms + vac_ms ))
sleep 1
dead_after=$(q -d lv_fleet -c "$dead_sql") dead_hub_after=$(q -d lv_fleet -c "$dead_hub_sql")
# The same call again, as every other daemon of the fleet makes it: nothing left to drop or delete.
read -r again_ms again_rows < <(q -d lv_fleet -F ' ' <<SQL
SELECT clock_timestamp() AS c0 \gset
SELECT sum(rows_deleted) AS n FROM lock_monitoring.cleanup_old_data($retention) \gset
SELECT round(extract(epoch FROM clock_timestamp() - :'c0'::timestamptz) * 1000), :n;
SQL
)
t_total=$(( $(date +%s) - t0 ))

p99=$(val p99) cores=$(val vault_cpu_cores)
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { print (v + 0 <= t + 0 ? "met" : "MISSED") }'; }
fleet_p99=$(awk -F'|' '{ gsub(/ /, "", $5); print $5 }' <<<"$fleet_dash_row")
vault_server=$(q -d lv_fleet -c "SELECT split_part(version(), ' on ', 1) || ', max_locks_per_transaction = ' || current_setting('max_locks_per_transaction')")
capacity=$(awk -v n="$CLUSTERS" -v c="$cores" 'BEGIN { if (c > 0) printf "%.0f", n / c; else print "n/a" }')

cat <<MD
## 7. Fleet: one vault, $CLUSTERS clusters

\`bench/fleet.sh\` ($t_total s; the vault: $vault_server). $CLUSTERS synthetic clusters write into one vault (\`lv_fleet\`, on the benchmark cluster) at 1 Hz,
concurrently: one thread and one vault connection each, each cycle spread over the second, through lockvault's own
writer as the daemon runs it (\`ChangeOnlyCycleWriter\`: the cycle the daemon builds, only what changed since the
cluster's last successful write, \`record_cycle\` in its own transaction; a cycle where nothing changed and no
60 s heartbeat is due makes no vault call at all). The cycle streams are
real cycles sampled by lockvault's Monitor from \`lv_fleet_work\` where real sessions held and waited for locks
($recorded); each cluster replays one under its own system_identifier, sampled now: of every 20 clusters, 12 quiet,
3 with a steady blocker, 4 with blockers coming and going, 1 with deadlocks (a replayed deadlock is a new one).
Replayed sessions are the recorded ones, so hubs are created in a warm-up, not measured: each cluster's connection
writes its stream once whole (every writer function planned and every partition opened once on it, as on a running
daemon's connection), then once change-only, after which its writer knows what the vault holds; each cluster's
stream is shifted back by up to a minute so that heartbeats spread over the minute. Hubs are reused after, so the
numbers are the steady-state writes of satellites and links, a little below a real fleet's.
Measured over $(val seconds) s: $(val cycles) cycles, of which $(val writes) made a vault call ($(awk -v c="$(val calls_per_cycle)" 'BEGIN { printf "%.1f", 100 * c }') %), $(val failures) failed$( [[ -n $(val first_failure) ]] && echo " (first: $(val first_failure))").
Latency is of the vault calls made (a cycle that makes none costs nothing and is not counted), from the call to its
commit's answer. The vault holds a partition a day for the $DAYS days before the replay, as after $DAYS days of running
(created first; the history is copied into them below). The current rows are in a partition of their own (migration
030), so a current row's read or end-dating opens that one, not every day's. WAL and size are read before and after
the replay, each time after a VACUUM of the current partitions: ending a row moves it out of there and leaves a dead
row, which autovacuum reclaims after 1,000 (about once a minute at this rate), so the space is reused. Size per
cluster-day is of the history; the current partitions are shown apart: their files keep the size they reached, which
in a 60 s window is a one-off, not a rate.

| measure | value | target | |
|---|---:|---:|---|
| vault write latency per call, p50 | $(val p50) ms | | |
| vault write latency per call, p99 | $p99 ms | ≤ 50 ms | $(verdict "$p99" 50) |
| vault write latency, max | $(val max) ms | | |
| vault calls per cycle | $(val calls_per_cycle) | | |
| vault CPU per call | $(val cpu_ms_per_call) ms | | |
| vault CPU, the $CLUSTERS writing backends | $(awk -v c="$cores" 'BEGIN { printf "%.1f", 100 * c }') % of one core | | |
| vault CPU per cluster | $(val cpu_pct_per_cluster) % of one core | | |
| WAL per cluster-day | $(val wal_mb_per_cluster_day) MB | | |
| vault size per cluster-day (the history; the current partitions apart) | $(val size_mb_per_cluster_day) MB | | |
| the current partitions, before → after the replay | $(val current_mb_before) → $(val current_mb_after) MB (all clusters; they hold the current rows and the dead rows between vacuums, and don't grow with the history) | | |

**Capacity of one vault core: about $capacity clusters** of this mix at 1 Hz ($CLUSTERS clusters took $(awk -v c="$cores" 'BEGIN { printf "%.2f", c }')
of a core in their backends; WAL writer, checkpointer and autovacuum come on top). A bigger fleet needs, per
$capacity clusters, another core on the vault; WAL and size grow linearly per cluster-day (above). Past a few
cores of one server, split the fleet over several vaults (by team or region): nothing in lockvault needs
one vault to see all clusters.

### $DAYS days of fleet history

The replay's rows copied $copies times back over $DAYS days (\`bench/fleet-history.sql\`, $t_hist s): $history_rows rows,
$history_size, $partitions partitions — that is $(awk -v c="$copies" -v s="$(val seconds)" -v d="$DAYS" 'BEGIN { printf "%.2f", 100 * c * s / (d * 86400) }') % of what $CLUSTERS clusters would write in $DAYS days at
the replay's rate (the machine's limit, not lockvault's: the dashboards read current rows through partial indexes, so what they
cost depends on the current rows and the partition count, not the closed history). fleet_dashboard: $fleet_rows.

| query | rows | median ms | p99 ms | target (p99) | |
|---|---:|---:|---:|---:|---|
$fleet_dash_row

Every other dashboard over the same history (\`lockvault-bench dashboards\`, as in part 5):

$dashboards_md

fleet_dashboard p99 ${fleet_p99:-?} ms (target < 50 ms: $(verdict "${fleet_p99:-1e9}" 49.999)).

### Retention of the oldest day: DELETE then, partitions now

\`cleanup_old_data($retention)\` over the same history: first the function as it was before partitioning (DELETE of
closed rows, its cutoff moved back to the midnight the partitions are dropped at, so both remove the same satellite
rows; run in a transaction that is rolled back), then today's (whole days detached and dropped, the rows
closed after the cutoff moved to the default partition, current rows untouched in their own partition; hubs, links
and alerts still by DELETE, the hubs and links in batches after).

| retention | rows removed | time | WAL | dead tuples left (vacuum debt) | target | |
|---|---:|---:|---:|---:|---:|---|
| DELETE (before, reference) | $del_rows | $del_ms ms | $(awk -v w="$del_wal" 'BEGIN { printf "%.1f MB", w / 1048576 }') | $del_rows (every deleted row, until vacuumed) | | |
| partitions (now, as the daemon runs it): $part_dropped partitions dropped | $part_rows | $part_ms ms | $(awk -v w="$part_wal" 'BEGIN { printf "%.1f MB", w / 1048576 }') (all three steps) | $(( dead_after - dead_before )) after the VACUUM (hubs and links: $(( dead_hub_after - dead_hub_before ))) | < 1 s, no bloat | $( [[ $part_ms -lt 1000 ]] && (( dead_after - dead_before < part_rows / 100 + 100 )) && echo met || echo MISSED) |
| … then the hub sweep: $batches batches of up to $(rv batch_size) keys, each a transaction holding the hub lock | (in the rows above) | $sweep_ms ms (longest batch $longest_ms ms) | | | | |
| … then VACUUM of what it DELETEd from | | $vac_ms ms | | | | |
| all three | | $ret_ms ms | | | | |
| partitions, the same call again (every other daemon of the fleet) | $again_rows | $again_ms ms | | | | |

The partition path still DELETEs the hubs and links no row refers to any more and the default partition's rows past
the retention; the VACUUM after it (the daemon runs it after every run that removed rows, where its role may: the
vault's owner, or MAINTAIN from PostgreSQL 17 on, migration 028; elsewhere autovacuum, whose thresholds on hubs and
links migration 028 lowers to 1,000 dead rows) reclaims them, so the dead tuples left are only those a snapshot
older than the run still sees. Only the hubs and links the removed rows referred to are looked at (retention_drop
records their keys in retention_retired_key); which of them a kept row still refers to is an index probe of every
partition per key (the history has no foreign keys to its hubs since migration 023, so there is no second check per
key). The drop is one transaction holding ACCESS EXCLUSIVE locks on the tables of the dropped partitions (writes and
dashboards on them wait for it) but not the hub lock; each sweep batch is a transaction of its own holding the hub
lock (every writer waits for at most one batch). A DBA's \`cleanup_old_data()\` runs the same steps in one
transaction, the VACUUM aside.
MD
