#!/usr/bin/env bash
# The fleet part of the benchmarks, called by bench/run.sh with the benchmark cluster running and
# PG* pointing at it; prints the markdown section for docs/benchmarks.md (`lockvault-bench
# fleet-report` writes it from the raw measurements this script leaves in its work folder).
#
#   bench/fleet.sh BENCH_BINARY LOCKVAULT_BINARY [--smoke]
#
# Environment: FLEET_CLUSTERS (200), FLEET_SECONDS (40 s of replay), FLEET_DAYS (30 days of
# history), FLEET_HISTORY_CAP (rows copied into the history, 3 000 000), FLEET_DASH_ROUNDS (51).
#
# 1. real cycles recorded by lockvault's Monitor in lv_fleet_work (quiet, a steady blocker,
#    blockers coming and going, deadlocks); 2. FLEET_CLUSTERS threads replay them at 1 Hz into
#    one vault (lv_fleet), each through its own VaultWriter (the daemon's, record_cycle); write
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
m() { echo "$*" >>"$work/measurements"; }   # KEY VALUE…: one raw measurement for the report
m clusters "$CLUSTERS"; m days "$DAYS"
t0=$(date +%s)

q -c "DROP DATABASE IF EXISTS lv_fleet" -c "DROP DATABASE IF EXISTS lv_fleet_work" -c "CREATE DATABASE lv_fleet" -c "CREATE DATABASE lv_fleet_work"
"${lockvault[@]}" migrate --dsn dbname=lv_fleet >/dev/null
# The vault as it is after $DAYS days: a partition a day (the history is copied into them later). Every statement on
# current rows reads every partition, so the writes are measured with all of them there, not on a new vault.
q -d lv_fleet -c "SELECT count(*) FROM lock_monitoring.create_history_partitions((now() AT TIME ZONE 'UTC')::date - $DAYS - 1, (now() AT TIME ZONE 'UTC')::date + 8)" >/dev/null
echo "  fleet: recording real cycles, then $CLUSTERS clusters at 1 Hz for $SECONDS_ s" >&2
"$bench" fleet --work-db lv_fleet_work --vault-db lv_fleet --clusters "$CLUSTERS" --seconds "$SECONDS_" >"$work/replay"

q -d lv_fleet -c "ANALYZE" >/dev/null
live_rows() { q -d lv_fleet -c "SELECT sum(c.reltuples)::bigint FROM pg_class c WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind = 'r'"; }
replay_rows=$(live_rows)
# Copies of the replay's rows: as many as CAP rows hold, at least one a day, at most one an hour.
copies=$(( CAP / (replay_rows > 0 ? replay_rows : 1) ))
(( copies > DAYS * 24 )) && copies=$(( DAYS * 24 )); (( copies < DAYS )) && copies=$DAYS
m copies "$copies"
echo "  fleet: $DAYS days of history ($copies copies of $replay_rows rows)" >&2
t1=$(date +%s)
q -d lv_fleet -v copies="$copies" -v days="$DAYS" -f bench/fleet-history.sql >/dev/null
m t_hist $(( $(date +%s) - t1 ))
m history_rows "$(live_rows)"
m history_size "$(q -d lv_fleet -c "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind = 'r'")"
m partitions "$(q -d lv_fleet -c "SELECT count(*) FROM lock_monitoring.history_partitions()")"
echo "  fleet: dashboards" >&2
"$bench" fleet-dashboard --vault-db lv_fleet --rounds "$ROUNDS" >"$work/fleet-dashboard"
"$bench" dashboards --vault-db lv_fleet --rounds "$ROUNDS" >"$work/dashboards.md"
m fleet_rows "$(q -d lv_fleet -c "SELECT count(*) || ' rows (' || count(*) FILTER (WHERE state = 'alive') || ' alive)' FROM lock_monitoring.fleet_dashboard")"

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
m dead_before "$(q -d lv_fleet -c "$dead_sql") $(q -d lv_fleet -c "$dead_hub_sql")"   # all tables, hubs and links
# DELETE, as before partitioning: measured, then rolled back, so both run over the same rows (ms, WAL bytes, rows).
m delete "$(q -d lv_fleet -F ' ' <<SQL
BEGIN;
\i $work/cleanup_by_delete.sql
SELECT pg_current_wal_insert_lsn() AS l0, clock_timestamp() AS c0 \gset
SELECT sum(rows_deleted) AS n FROM pg_temp.cleanup_by_delete($retention) \gset
SELECT round(extract(epoch FROM clock_timestamp() - :'c0'::timestamptz) * 1000), pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'l0'), :n;
ROLLBACK;
SQL
)"
# Partitions: today's retention as the daemon runs it (RetentionRun, through lockvault-bench): retention_drop in a
# transaction of its own, retention_sweep batches (each holding the hub lock: what a writer may wait for), then the
# VACUUM of every table it may have DELETEd from. WAL from before to after.
wal0=$(q -d lv_fleet -c "SELECT pg_current_wal_insert_lsn()")
"$bench" retention --vault-db lv_fleet --days "$retention" >"$work/retention"
m partition_wal "$(q -d lv_fleet -c "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$wal0')")"
sleep 1
m dead_after "$(q -d lv_fleet -c "$dead_sql") $(q -d lv_fleet -c "$dead_hub_sql")"
# The same call again, as every other daemon of the fleet makes it: nothing left to drop or delete (ms, rows).
m again "$(q -d lv_fleet -F ' ' <<SQL
SELECT clock_timestamp() AS c0 \gset
SELECT sum(rows_deleted) AS n FROM lock_monitoring.cleanup_old_data($retention) \gset
SELECT round(extract(epoch FROM clock_timestamp() - :'c0'::timestamptz) * 1000), :n;
SQL
)"
m t_total $(( $(date +%s) - t0 ))
m vault_server "$(q -d lv_fleet -c "SELECT split_part(version(), ' on ', 1) || ', max_locks_per_transaction = ' || current_setting('max_locks_per_transaction')")"
"$bench" fleet-report "$work"
