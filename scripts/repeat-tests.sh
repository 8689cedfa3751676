#!/usr/bin/env bash
# Runs the concurrency scenarios again and again, to shake out flaky timing: real sessions that
# block, deadlock, get terminated, and a monitor under faults. Stops at the first failure and
# shows its output.
#
#   scripts/repeat-tests.sh            100 runs
#   scripts/repeat-tests.sh 20         20 runs
#   scripts/repeat-tests.sh 5 --filter ResolveLiveTests    other tests (a `swift test --filter` regex)
#
# Uses the same private cluster as scripts/test.sh ($LOCKVAULT_PGDATA, $LOCKVAULT_PGPORT); starts it
# if needed and stops it again at the end if this script started it. Builds once.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

runs=${1:-100}
[[ $runs =~ ^[0-9]+$ && $runs -ge 1 ]] || { echo "usage: $0 [RUNS] [--filter REGEX]" >&2; exit 2; }
shift || true
filter='SamplingLiveTests|DeadlockLiveTests|ResolveLiveTests|SessionSignallerLiveTests|MonitorFaultLiveTests|LeastPrivilegeLiveTests|AlertsLiveTests'
if [[ ${1:-} == --filter ]]; then
    [[ -n ${2:-} ]] || { echo "usage: $0 [RUNS] [--filter REGEX]" >&2; exit 2; }
    filter=$2
fi

started=0
if ! scripts/pg-cluster.sh status 2>/dev/null; then
    scripts/pg-cluster.sh start
    started=1
fi
log=$(mktemp "${TMPDIR:-/tmp}/lockvault-repeat.XXXXXX")
cleanup() {
    rm -f "$log"
    if [[ $started -eq 1 ]]; then scripts/pg-cluster.sh stop || true; fi
}
trap cleanup EXIT

eval "$(scripts/pg-cluster.sh env)"
[[ ${LOCKVAULT_TEST_BUILT:-} == 1 ]] || swift build --build-tests   # .ci/run built already
export LOCKVAULT_TEST_BINARY="$(swift build --show-bin-path)/lockvault"

begin=$(date +%s)
for ((i = 1; i <= runs; i++)); do
    t0=$(date +%s)
    if ! swift test --skip-build --filter "$filter" >"$log" 2>&1; then
        echo "run $i of $runs FAILED after $(( $(date +%s) - t0 )) s; its output:"
        grep -E '✘|recorded an issue|Expectation failed|error:' "$log" | head -40 || true
        echo "--- last lines"
        tail -40 "$log"
        exit 1
    fi
    tests=$(grep -Eo 'Test run with [0-9]+ tests' "$log" | grep -Eo '[0-9]+' || echo "?")
    echo "run $i of $runs: $tests tests passed in $(( $(date +%s) - t0 )) s"
done
echo "all $runs runs passed in $(( $(date +%s) - begin )) s"
