#!/usr/bin/env bash
# What a blocking episode costs the vault, before and after episodes were recorded, side by side:
# ROUNDS rounds of N episodes at once, each a holder (an active session holding SHARE on a table of its own)
# and 2 waiters (INSERTs into it) that wait 3 s once both are queued, watched by `lockvault run` (the defaults of etc/lockvault.yaml:
# 1 Hz, min_wait_seconds 1), with each binary on a fresh private cluster (the test cluster's settings:
# fsync, synchronous_commit and full_page_writes off). Measured from just before the episodes begin
# until the daemon has recorded their end: the change in the size of every lock_monitoring table
# (pg_total_relation_size: heap, indexes, TOAST; page-granular, hence N at once) and the cluster's WAL
# (pg_current_wal_lsn), divided by the episodes; and, for a binary that records episodes, the share of its
# episode tables (blocking_episode_h, blocking_episode_s, blocking_episode_session_l).
#
#   bench/episode-cost.sh [N [ROUNDS]] [BINARY ...]    default: 50 × 4, this worktree's debug build
#   bench/episode-cost.sh 50 4 /tmp/lockvault-c28c89a .build/debug/lockvault
#
# One private cluster at a time in .pgdata-epcost (port $LOCKVAULT_PGPORT, default 54346), removed at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${1:-50} rounds=${2:-4}
shift 2 || shift $# || true
binaries=("$@")
total=$(( n * rounds ))
[[ ${#binaries[@]} -gt 0 ]] || binaries=("$(swift build --show-bin-path)/lockvault")
work=$(mktemp -d /tmp/lockvault-epcost.XXXXXX)
cluster() { env LOCKVAULT_PGDATA="$(pwd)/.pgdata-epcost" LOCKVAULT_PGPORT="${LOCKVAULT_PGPORT:-54346}" scripts/pg-cluster.sh "$@"; }
daemon_pid=
cleanup() {
    [[ -n $daemon_pid ]] && { kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null || true; }
    cluster destroy >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
q() { psql -XAtq -v ON_ERROR_STOP=1 -d lv_vault "$@"; }
sizes="SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind IN ('r', 'm')"
episode_sizes="$sizes AND c.relname LIKE 'blocking\_episode\_%'"

echo "| binary | episodes | vault bytes per episode | of which episode tables | WAL bytes per episode | episodes recorded | rows in episode tables |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for bin in "${binaries[@]}"; do
    cluster destroy >/dev/null 2>&1 || true
    cluster start >&2
    eval "$(cluster env)"
    psql -XAtq -c "CREATE DATABASE lv_vault"
    "$bin" migrate --dsn "dbname=lv_vault" >/dev/null
    for i in $(seq 1 "$n"); do echo "CREATE TABLE ep_$i (id int);"; done | q
    q -c "CREATE TABLE ep_go (round int)"
    printf 'target:\n  dsn: "dbname=lv_vault"\nlogging:\n  level: warning\n' >"$work/run.yaml"
    "$bin" run --config "$work/run.yaml" >"$work/daemon.log" 2>&1 &
    daemon_pid=$!
    until [[ $(q -c "SELECT count(*) FROM lock_monitoring.monitor_cycle_s") -gt 0 ]]; do sleep 0.2; done
    has_episodes=$(q -c "SELECT to_regclass('lock_monitoring.blocking_episode_s') IS NOT NULL")
    q -c "VACUUM" -c "CHECKPOINT"
    before=$(q -c "$sizes"); before_ep=0
    # Per episode table, heap and indexes, before (for where the bytes went).
    per_table="SELECT t.n, sum(pg_relation_size(c.oid)), sum(pg_indexes_size(c.oid))
               FROM pg_class c CROSS JOIN LATERAL (SELECT regexp_replace(c.relname, '_(p\d{8}|default)$', '') AS n) t
               WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind = 'r' AND c.relname LIKE 'blocking\_episode\_%' GROUP BY 1 ORDER BY 1"
    [[ $has_episodes == t ]] && q -F ' ' -c "$per_table" >"$work/tables.before"
    [[ $has_episodes == t ]] && before_ep=$(q -c "$episode_sizes")
    wal_before=$(q -c "SELECT pg_current_wal_lsn()")
    started=$SECONDS
    for round in $(seq 1 "$rounds"); do
        pids=()
        for i in $(seq 1 "$n"); do
            # Holds until the script says go (each loop statement sees the latest rows).
            q -c "BEGIN" -c "LOCK TABLE ep_$i IN SHARE MODE" \
              -c "DO \$\$BEGIN WHILE NOT EXISTS (SELECT 1 FROM ep_go WHERE round = $round) LOOP PERFORM pg_sleep(0.05); END LOOP; END\$\$" \
              -c "COMMIT" >/dev/null &
            pids+=($!)
        done
        # The holders first, so the INSERTs queue behind them.
        until [[ $(q -c "SELECT count(*) FROM pg_locks WHERE locktype = 'relation' AND mode = 'ShareLock' AND granted") -ge $n ]]; do sleep 0.05; done
        for i in $(seq 1 "$n"); do
            for _ in 1 2; do q -c "INSERT INTO ep_$i VALUES (1)" >/dev/null & pids+=($!); done
        done
        # Every waiter queued, the holders hold 3 s more.
        until [[ $(q -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO ep\_%'") -ge $(( 2 * n )) ]]; do sleep 0.05; done
        sleep 3
        q -c "INSERT INTO ep_go VALUES ($round)"
        wait "${pids[@]}"
        # Recorded: no current blocker left in the vault (and, with episodes, every one ended).
        deadline=$(( SECONDS + 60 ))
        until [[ $(q -c "SELECT count(*) FROM lock_monitoring.blocking_session_s WHERE load_end_date IS NULL") == 0 ]] \
            && { [[ $has_episodes != t ]] || [[ $(q -c "SELECT count(*) FROM lock_monitoring.blocking_episode_s WHERE phase = 'ended'") -ge $(( n * round )) ]]; }; do
            (( SECONDS < deadline )) || { echo "episode-cost: round $round not recorded within 60 s" >&2; exit 1; }
            sleep 0.2
        done
    done
    echo "$bin: $rounds rounds of $n episodes in $(( SECONDS - started )) s" >&2
    wal=$(q -c "SELECT pg_current_wal_lsn() - '$wal_before'::pg_lsn")
    after=$(q -c "$sizes")
    ep_bytes=- recorded=- rows=-
    if [[ $has_episodes == t ]]; then
        ep_bytes=$(( ($(q -c "$episode_sizes") - before_ep) / total ))
        recorded=$(q -c "SELECT count(*) FROM lock_monitoring.blocking_episodes_dashboard WHERE ended_by IS NOT NULL")
        # Where they went (to stderr): per table, heap and index bytes added per episode.
        q -F ' ' -c "$per_table" | join - "$work/tables.before" \
            | awk -v n="$total" '{ printf "    %s: heap %d, indexes %d bytes per episode\n", $1, ($2 - $4) / n, ($3 - $5) / n }' >&2
        q -F ' ' -c "SELECT phase, avg(pg_column_size(s.*))::int, avg(pg_column_size(s.waiters))::int, avg(pg_column_size(s.root_query))::int
                     FROM lock_monitoring.blocking_episode_s s GROUP BY 1" | sed 's/^/    row bytes (phase, row, waiters, root_query): /' >&2
        rows=$(q -c "SELECT (SELECT count(*) FROM lock_monitoring.blocking_episode_h) + (SELECT count(*) FROM lock_monitoring.blocking_episode_s)
                            + (SELECT count(*) FROM lock_monitoring.blocking_episode_session_l)")
    fi
    kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true; daemon_pid=
    echo "| \`$bin\` ($("$bin" --version 2>/dev/null | head -1)) | $total | $(( (after - before) / total )) | $ep_bytes | $(( ${wal%.*} / total )) | $recorded | $rows |"
    cluster destroy >/dev/null 2>&1 || true
done
