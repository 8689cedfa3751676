#!/usr/bin/env bash
# Runs the concurrency scenarios many times in a row and stops at the first failure: a flaky
# test is a broken test, and one green run proves little about code that races real sessions.
#
#   scripts/repeat-tests.sh            100 runs (the stress-test method's count)
#   scripts/repeat-tests.sh 20         20 runs
#   scripts/repeat-tests.sh 5 Deadlock 5 runs of the tests matching a filter
#
# Uses the same private cluster as scripts/test.sh ($LOCKVAULT_PGDATA, $LOCKVAULT_PGPORT).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-100}
filter=${2:-'SamplingLiveTests|DeadlockLiveTests|ResolveLiveTests|SessionSignallerLiveTests|AlertsLiveTests'}

started=0
if ! scripts/pg-cluster.sh status >/dev/null 2>&1; then
    scripts/pg-cluster.sh start
    started=1
fi
cleanup() { if [[ $started -eq 1 ]]; then scripts/pg-cluster.sh stop || true; fi; }
trap cleanup EXIT
eval "$(scripts/pg-cluster.sh env)"

swift build --build-tests 2>&1 | tail -1
export LOCKVAULT_TEST_BINARY="$(swift build --show-bin-path)/lockvault"
log=$(mktemp)
begin=$SECONDS
for ((i = 1; i <= runs; i++)); do
    t0=$SECONDS
    if ! swift test --skip-build --filter "$filter" >"$log" 2>&1; then
        echo "run $i/$runs FAILED after $((SECONDS - t0)) s:"
        grep -E "✘|error" "$log" | head -40
        echo "(full log: $log)"
        exit 1
    fi
    echo "run $i/$runs ok ($(grep -oE 'Test run with [0-9]+ tests' "$log" | grep -oE '[0-9]+') tests, $((SECONDS - t0)) s)"
done
rm -f "$log"
echo "all $runs runs passed in $((SECONDS - begin)) s"
