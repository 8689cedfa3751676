#!/usr/bin/env bash
# Runs the concurrency scenarios again and again, to shake out flaky timing: real sessions that
# block, deadlock, get terminated, and a monitor under faults. Stops at the first failure and
# shows its output.
#
#   scripts/repeat-tests.sh            100 runs
#   scripts/repeat-tests.sh 20         20 runs
#   scripts/repeat-tests.sh 5 --filter ResolveLiveTests    other tests (a `swift test --filter` regex)
#   LOCKVAULT_TEST_DIFFERENTIAL_SCENARIOS=500 scripts/repeat-tests.sh 4 --filter DifferentialLiveTests
#                                      2,000 differential scenarios: each run starts at the seed after
#                                      the previous run's last (from LOCKVAULT_TEST_DIFFERENTIAL_SEED, 1)
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

# The differential suite draws its scenarios from a seed: each run gets seeds of its own.
first_seed=${LOCKVAULT_TEST_DIFFERENTIAL_SEED:-1}
per_run=${LOCKVAULT_TEST_DIFFERENTIAL_SCENARIOS:-200}
[[ $first_seed =~ ^[0-9]+$ && $per_run =~ ^[0-9]+$ ]] \
    || { echo "$0: LOCKVAULT_TEST_DIFFERENTIAL_SEED and LOCKVAULT_TEST_DIFFERENTIAL_SCENARIOS take whole numbers" >&2; exit 2; }

begin=$(date +%s)
for ((i = 1; i <= runs; i++)); do
    t0=$(date +%s)
    export LOCKVAULT_TEST_DIFFERENTIAL_SEED=$((first_seed + (i - 1) * per_run))
    if ! swift test --skip-build --filter "$filter" >"$log" 2>&1; then
        echo "run $i of $runs FAILED after $(( $(date +%s) - t0 )) s; its output:"
        grep -E '✘|recorded an issue|Expectation failed|error:' "$log" | head -40 || true
        echo "--- last lines"
        tail -40 "$log"
        exit 1
    fi
    tests=$(grep -Eo 'Test run with [0-9]+ tests' "$log" | grep -Eo '[0-9]+' || echo "?")
    echo "run $i of $runs: $tests tests passed in $(( $(date +%s) - t0 )) s"
    grep -E '^differential: ' "$log" || true
done
echo "all $runs runs passed in $(( $(date +%s) - begin )) s"
