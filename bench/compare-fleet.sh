#!/usr/bin/env bash
# The fleet replay (lockvault-bench fleet, bench/fleet.sh's measured part) of two builds, alternated
# in one run on one private cluster, so that a change to the vault writer is judged against the
# writer before it under the same noise.
#
#   bench/compare-fleet.sh BEFORE_BIN_DIR AFTER_BIN_DIR [ROUNDS]
#
# Each BIN_DIR holds a release `lockvault` and `lockvault-bench` (e.g. a worktree of the older
# commit built with `swift build -c release --scratch-path .build-bench`). Each round gives each
# build a fresh vault (migrated by its own lockvault, 30 days of partitions) and a fresh work
# database, and prints the replay's figures, one line per build and round. Environment:
# FLEET_CLUSTERS (200), FLEET_SECONDS (40); the cluster is .pgdata-compare on port 54341.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
before=$1 after=$2 rounds=${3:-2}
export LOCKVAULT_PGDATA=${LOCKVAULT_COMPARE_PGDATA:-$(pwd)/.pgdata-compare} LOCKVAULT_PGPORT=54341 LOCKVAULT_PG_MAX_CONNECTIONS=700
scripts/pg-cluster.sh status >/dev/null 2>&1 || scripts/pg-cluster.sh start >/dev/null
trap 'scripts/pg-cluster.sh stop >/dev/null || true' EXIT
eval "$(scripts/pg-cluster.sh env)"
q() { psql -XAtq -v ON_ERROR_STOP=1 "$@"; }
# The binaries read only their own settings: the cluster's LOCKVAULT_* are this script's.
run() { env -u LOCKVAULT_PGDATA -u LOCKVAULT_PGPORT -u LOCKVAULT_PG_MAX_CONNECTIONS "$@"; }
for round in $(seq 1 "$rounds"); do
    for arm in before after; do
        bin=$before; [[ $arm == after ]] && bin=$after
        q -c "DROP DATABASE IF EXISTS lv_fleet" -c "DROP DATABASE IF EXISTS lv_fleet_work" -c "CREATE DATABASE lv_fleet" -c "CREATE DATABASE lv_fleet_work" 2>/dev/null
        run "$bin/lockvault" migrate --dsn dbname=lv_fleet >/dev/null
        q -d lv_fleet -c "SELECT count(*) FROM lock_monitoring.create_history_partitions((now() AT TIME ZONE 'UTC')::date - 31, (now() AT TIME ZONE 'UTC')::date + 8)" >/dev/null
        figures=$(run "$bin/lockvault-bench" fleet --work-db lv_fleet_work --vault-db lv_fleet \
            --clusters "${FLEET_CLUSTERS:-200}" --seconds "${FLEET_SECONDS:-40}" | tr '\n=' '  ')
        echo "round $round $arm: $figures"
    done
done
