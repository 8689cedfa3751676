#!/usr/bin/env bash
# Checks systemd/*.service: `systemd-analyze verify` (any complaint fails, unknown keys
# included) and `systemd-analyze security --offline=yes` (exposure must be ≤ 1.5).
#
# Runs in a private mount namespace with its own tmpfs on /run/systemd, so nothing is left on
# the host; works without systemd as PID 1. The units name /usr/bin/lockvault, which need not
# be installed here: verify copies whose binary path points at an executable that exists.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
max_exposure=${LOCKVAULT_MAX_EXPOSURE:-1.5}

if [[ ${1:-} != --inside ]]; then
    command -v systemd-analyze >/dev/null || { echo "verify-units: systemd-analyze not found (apt-get install systemd)" >&2; exit 1; }
    exec unshare --mount --propagation private -- "$0" --inside
fi

mount -t tmpfs tmpfs /run/systemd 2>/dev/null || { mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stand_in=$(command -v true)
status=0
for unit in systemd/lockvault.service systemd/lockvault@.service; do
    name=$(basename "$unit")
    sed "s|/usr/bin/lockvault|$stand_in|g" "$unit" >"$work/$name"
    target=$work/$name
    [[ $name == *@.service ]] && { cp "$work/$name" "$work/lockvault@demo.service"; target=$work/lockvault@demo.service; }
    out=$(cd "$work" && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$target" 2>&1 || true)
    # Units we point at but that don't exist on a build machine are not our unit's fault.
    complaints=$(grep -vE "postgresql\.service|^$" <<<"$out" || true)
    if [[ -n $complaints ]]; then
        echo "verify-units: systemd-analyze verify $name:"; echo "$complaints"; status=1
    else
        echo "verify-units: $name: verify ok"
    fi
    exposure=$(cd "$work" && systemd-analyze security --offline=yes --no-pager "$target" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    if [[ -z $exposure ]]; then
        echo "verify-units: $name: could not read the exposure level"; status=1
    elif awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e > m) }'; then
        echo "verify-units: $name: exposure $exposure > $max_exposure"; status=1
        (cd "$work" && systemd-analyze security --offline=yes --no-pager "$target" | grep -E '^✗' | head -20)
    else
        echo "verify-units: $name: exposure $exposure (≤ $max_exposure)"
    fi
done
exit $status
