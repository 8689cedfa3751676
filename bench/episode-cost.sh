#!/usr/bin/env bash
# What a blocking episode costs the vault, before and after episodes were recorded, side by side:
# N episodes at once, each a holder for 3 s (an active session holding SHARE on a table of its own)
# and 2 waiters (INSERTs into it), watched by `lockvault run` (the defaults of etc/lockvault.yaml:
# 1 Hz, min_wait_seconds 1), with each binary on a fresh private cluster (the test cluster's settings:
# fsync, synchronous_commit and full_page_writes off). Measured from just before the episodes begin
# until the daemon has recorded their end: the change in the size of every lock_monitoring table
# (pg_total_relation_size: heap, indexes, TOAST; page-granular, hence N at once) and the cluster's WAL
# (pg_current_wal_lsn), divided by N; and, for a binary that records episodes, the share of its
# episode tables (blocking_episode_h, blocking_episode_s, blocking_episode_session_l).
#
#   bench/episode-cost.sh [N] [BINARY ...]    default: N = 50, this worktree's debug build
#   bench/episode-cost.sh 50 /tmp/lockvault-c28c89a .build/debug/lockvault
#
# One private cluster at a time in .pgdata-epcost (port $LOCKVAULT_PGPORT, default 54346), removed at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${1:-50}
shift || true
binaries=("$@")
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
    printf 'target:\n  dsn: "dbname=lv_vault"\nlogging:\n  level: warning\n' >"$work/run.yaml"
    "$bin" run --config "$work/run.yaml" >"$work/daemon.log" 2>&1 &
    daemon_pid=$!
    until [[ $(q -c "SELECT count(*) FROM lock_monitoring.monitor_cycle_s") -gt 0 ]]; do sleep 0.2; done
    has_episodes=$(q -c "SELECT to_regclass('lock_monitoring.blocking_episode_s') IS NOT NULL")
    q -c "VACUUM" -c "CHECKPOINT"
    before=$(q -c "$sizes"); before_ep=0
    [[ $has_episodes == t ]] && before_ep=$(q -c "$episode_sizes")
    wal_before=$(q -c "SELECT pg_current_wal_lsn()")
    pids=()
    for i in $(seq 1 "$n"); do
        q -c "BEGIN" -c "LOCK TABLE ep_$i IN SHARE MODE" -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null &
        pids+=($!)
    done
    sleep 0.3   # the holders first, so the INSERTs queue behind them
    for i in $(seq 1 "$n"); do
        for _ in 1 2; do q -c "INSERT INTO ep_$i VALUES (1)" >/dev/null & pids+=($!); done
    done
    wait "${pids[@]}"
    # Recorded: no current blocker left in the vault (and, with episodes, every one ended).
    until [[ $(q -c "SELECT count(*) FROM lock_monitoring.blocking_session_s WHERE load_end_date IS NULL") == 0 ]] \
        && { [[ $has_episodes != t ]] || [[ $(q -c "SELECT count(*) FROM lock_monitoring.blocking_episode_s WHERE phase = 'ended'") -ge $n ]]; }; do
        sleep 0.2
    done
    wal=$(q -c "SELECT pg_current_wal_lsn() - '$wal_before'::pg_lsn")
    after=$(q -c "$sizes")
    ep_bytes=- recorded=- rows=-
    if [[ $has_episodes == t ]]; then
        ep_bytes=$(( ($(q -c "$episode_sizes") - before_ep) / n ))
        recorded=$(q -c "SELECT count(*) FROM lock_monitoring.blocking_episodes_dashboard WHERE ended_by IS NOT NULL")
        rows=$(q -c "SELECT (SELECT count(*) FROM lock_monitoring.blocking_episode_h) + (SELECT count(*) FROM lock_monitoring.blocking_episode_s)
                            + (SELECT count(*) FROM lock_monitoring.blocking_episode_session_l)")
    fi
    kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true; daemon_pid=
    echo "| \`$bin\` ($("$bin" --version 2>/dev/null | head -1)) | $n | $(( (after - before) / n )) | $ep_bytes | $(( ${wal%.*} / n )) | $recorded | $rows |"
    cluster destroy >/dev/null 2>&1 || true
done
