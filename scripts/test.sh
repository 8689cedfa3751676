#!/usr/bin/env bash
# Runs every test against a private, throwaway PostgreSQL 15 cluster.
#
#   scripts/test.sh                 build and run all tests (unit + live database)
#   scripts/test.sh --filter Name   extra arguments go to `swift test`
#
# The cluster lives in .pgdata/ (or $LOCKVAULT_PGDATA) on port $LOCKVAULT_PGPORT (54329); it is
# started if needed and stopped again at the end if this script started it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh
lockvault_prerequisites build server || exit $?

started=0
if ! scripts/pg-cluster.sh status 2>/dev/null; then
    scripts/pg-cluster.sh start
    started=1
fi
cleanup() { if [[ $started -eq 1 ]]; then scripts/pg-cluster.sh stop || true; fi; }
trap cleanup EXIT

eval "$(scripts/pg-cluster.sh env)"
psql -XAtqc "SELECT 'live database: ' || version()"
lockvault_build --build-tests || exit $?
export LOCKVAULT_TEST_BINARY="$(swift build --show-bin-path)/lockvault"
swift test --skip-build "$@"
