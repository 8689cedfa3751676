#!/usr/bin/env bash
# lockvault under a real systemd: boots a clean Debian 12 root filesystem with
# `systemd-nspawn --boot`, installs the .deb with apt (dependencies resolved for real, no Swift
# toolchain inside), and checks what no unit test can see:
#   - `systemctl enable --now lockvault` reaches active (running) with a STATUS text;
#   - provoked blocking shows in blocking_sessions_dashboard, and
#     `journalctl -u lockvault LOCKVAULT_SEVERITY=CRITICAL` returns that event;
#   - `systemctl reload` logs the reload and stays active; a bad config on reload keeps the old one;
#   - a SIGSTOPped daemon is restarted by the watchdog (NRestarts >= 1), with no backtracer noise;
#   - `systemctl stop` ends cleanly within TimeoutStopSec;
#   - `lockvault@prod.service` runs from /etc/lockvault/prod.yaml;
#   - `systemd-analyze security lockvault.service` <= 1.5; no thread-priority warning at start;
#   - upgrading to a rebuilt package with a higher version keeps a locally edited conffile and
#     restarts the running service; `apt purge` removes it.
#
#   scripts/test-systemd.sh                  build the packages (scripts/package-deb.sh) and test
#   scripts/test-systemd.sh --keep           leave the container's root filesystem for a look
#   scripts/test-systemd.sh --prepare        only debootstrap the cached root filesystem (CI does it
#                                            beside the test suites), then exit
#
# PostgreSQL 15 runs on the host (scripts/pg-cluster.sh, its own data dir and port); its socket
# directory is bound into the container. The debootstrapped root filesystem is cached in
# .cache/debian12-rootfs (git-ignored; $LOCKVAULT_ROOTFS_CACHE), and each run works on a copy.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh
here=$(pwd)
started=$(date +%s)

keep=0 prepare=0
case ${1:-} in
    --keep) keep=1 ;;
    --prepare) prepare=1 ;;
esac

[[ $(id -u) -eq 0 ]] || { echo "test-systemd: needs root (debootstrap, systemd-nspawn)" >&2; exit 69; }
lockvault_prerequisites build server package systemd || exit $?

log() { echo "==> [$(( $(date +%s) - started ))s] $*"; }
fail() { echo "test-systemd: FAIL: $*" >&2; dump_journal; exit 1; }
checks=0
pass() { checks=$((checks + 1)); echo "    ok: $*"; }

cache=${LOCKVAULT_ROOTFS_CACHE:-$here/.cache/debian12-rootfs}
rootfs_packages=systemd,systemd-sysv,dbus,ca-certificates
if ((prepare)); then
    lockvault_debian_rootfs "$cache" "$rootfs_packages" || { echo "test-systemd: no root filesystem" >&2; exit 1; }
    echo "test-systemd: root filesystem ready in $cache"
    exit 0
fi

# --- packages -----------------------------------------------------------------------------
base_version=$(lockvault_source_version)
[[ -n $base_version ]] || { echo "test-systemd: no version in Sources/LockvaultEngine/LockvaultVersion.swift" >&2; exit 1; }
v1=$base_version
v2=$base_version+ci1
log "building packages $v1 and $v2 (scripts/package-deb.sh)"
scripts/package-deb.sh --version "$v1"
scripts/package-deb.sh --version "$v2" --skip-lintian >/dev/null
arch=$(dpkg --print-architecture)
deb1=dist/lockvault_${v1}_${arch}.deb
deb2=dist/lockvault_${v2}_${arch}.deb

# --- root filesystem ------------------------------------------------------------------------
lockvault_debian_rootfs "$cache" "$rootfs_packages" || fail "no root filesystem"
work=$(mktemp -d "${TMPDIR:-/tmp}/lockvault-nspawn.XXXXXX")
root=$work/root
log "copying the root filesystem to $root"
cp -a "$cache" "$root"
echo lockvault-ci >"$root/etc/hostname"
cp "$deb1" "$deb2" "$root/root/"
[[ -x $root/usr/bin/swift || -d $root/opt/swift ]] && fail "the container has a Swift toolchain"

# --- PostgreSQL 15 on the host ---------------------------------------------------------------
export LOCKVAULT_PGDATA=${LOCKVAULT_SYSTEMD_PGDATA:-$here/.pgdata-systemd} LOCKVAULT_PGPORT=${LOCKVAULT_SYSTEMD_PGPORT:-54349}
scripts/pg-cluster.sh start
eval "$(scripts/pg-cluster.sh env)"
socket=$PGHOST
psql -XqAt -d postgres -c "DROP DATABASE IF EXISTS lockvault_ci WITH (FORCE)" -c "CREATE DATABASE lockvault_ci"
psql -XqAt -d lockvault_ci -c "DROP ROLE IF EXISTS lockvault" -c "CREATE ROLE lockvault LOGIN" \
    -c "GRANT pg_monitor TO lockvault" -c "CREATE TABLE accounts (id int PRIMARY KEY, n int)" \
    -c "INSERT INTO accounts VALUES (1, 0)" -c "GRANT SELECT, UPDATE ON accounts TO PUBLIC"

holders=()
nspawn_pid=
cleanup() {
    for p in "${holders[@]}"; do kill "$p" 2>/dev/null || true; done
    if [[ -n $nspawn_pid ]] && kill -0 "$nspawn_pid" 2>/dev/null; then
        inside systemctl poweroff >/dev/null 2>&1 || true
        for _ in $(seq 1 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
        kill -9 "$nspawn_pid" 2>/dev/null || true
    fi
    if ((keep)); then echo "test-systemd: container root left at $root"; else rm -rf "$work"; fi
    scripts/pg-cluster.sh destroy >/dev/null 2>&1 || true
}
trap cleanup EXIT

# --- boot -----------------------------------------------------------------------------------
log "booting the container (systemd-nspawn --boot)"
systemd-nspawn --quiet --boot --register=no --keep-unit --console=read-only \
    --directory="$root" --machine=lockvault-ci --bind="$socket:/run/lockvault-pg" \
    >"$work/console.log" 2>&1 &
nspawn_pid=$!
# Run a command inside the container, in all its namespaces.
inside() { nsenter --target "$leader" --all --setuid 0 --setgid 0 -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
dump_journal() {
    [[ -n ${leader:-} ]] || return 0
    echo "--- journal (lockvault*) ---" >&2
    inside journalctl --no-pager -u 'lockvault*' -n 60 -o short-monotonic >&2 2>/dev/null || true
}
# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND until it succeeds, or fails the test.
wait_for() {
    local secs=$1 what=$2; shift 2
    local deadline=$(( $(date +%s) + secs ))
    until "$@" >/dev/null 2>&1; do
        (( $(date +%s) < deadline )) || fail "timed out after ${secs}s waiting for: $what"
        sleep 0.3
    done
}
# The container's init is the process that is PID 1 in its own PID namespace (NSpid "<host pid> 1").
# systemd-nspawn first forks an intermediate child that clones init and exits: entering that one
# instead runs commands outside the container, or fails once it is gone (CI saw systemd '' so).
container_init() {
    local p
    for p in $(pgrep -P "$nspawn_pid" 2>/dev/null) $(for c in $(pgrep -P "$nspawn_pid" 2>/dev/null); do pgrep -P "$c"; done); do
        [[ $(awk '/^NSpid:/ { print (NF > 2 ? $NF : "") }' "/proc/$p/status" 2>/dev/null) == 1 ]] && { echo "$p"; return 0; }
    done
    return 1
}
leader=
boot_deadline=$(( $(date +%s) + 60 ))
until leader=$(container_init); do
    kill -0 "$nspawn_pid" 2>/dev/null || { cat "$work/console.log" >&2; fail "systemd-nspawn exited"; }
    (( $(date +%s) < boot_deadline )) || { cat "$work/console.log" >&2; fail "no container init process after 60s"; }
    sleep 0.2
done
# `is-system-running --wait` fails at once while systemd's private bus socket isn't there yet, so
# ask again until it answers running or degraded (or the boot deadline passes).
state=
boot_deadline=$(( $(date +%s) + 180 ))
until [[ $state == running || $state == degraded ]]; do
    (( $(date +%s) < boot_deadline )) || { tail -40 "$work/console.log" >&2; fail "the container's systemd is '$state' after 180s"; }
    kill -0 "$nspawn_pid" 2>/dev/null || { cat "$work/console.log" >&2; fail "systemd-nspawn exited during boot"; }
    state=$(timeout 60 nsenter --target "$leader" --all -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin systemctl is-system-running --wait 2>/dev/null || true)
    [[ $state == running || $state == degraded ]] || sleep 0.5
done
pass "container booted (systemd $(inside systemctl --version | head -1 | awk '{print $2}'), state $state"

# --- install ----------------------------------------------------------------------------------
log "installing $deb1 with apt"
inside sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /root/$(basename "$deb1")" >"$work/apt.log" 2>&1 \
    || { cat "$work/apt.log" >&2; fail "apt-get install of the package failed"; }
inside test -x /usr/bin/lockvault || fail "/usr/bin/lockvault missing after install"
inside sh -c '! command -v swift' || fail "swift is on the container's PATH"
if inside ldd /usr/bin/lockvault | grep -q 'not found'; then inside ldd /usr/bin/lockvault >&2; fail "unresolved libraries"; fi
[[ $(inside systemctl is-enabled lockvault.service 2>&1 || true) == disabled ]] || fail "installing enabled the service"
inside systemctl is-active --quiet lockvault.service && fail "installing started the service"
[[ $(psql -XqAt -d lockvault_ci -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'lock_monitoring'") == 0 ]] \
    || fail "installing touched the database"
pass "apt installed $(inside dpkg-query -W -f='${Package} ${Version}' lockvault): no toolchain, all libraries resolved, nothing started, no database touched"

# --- vault, role, config --------------------------------------------------------------------
dsn="host=/run/lockvault-pg port=$LOCKVAULT_PGPORT dbname=lockvault_ci"
inside lockvault migrate --dsn "$dsn user=postgres" >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; fail "lockvault migrate"; }
psql -XqAt -d lockvault_ci -c "GRANT lock_writer_role TO lockvault"
write_config() { # FILE CLUSTER_NAME
    inside sh -c "cat > $1" <<YAML
# edited locally by scripts/test-systemd.sh
cluster_name: $2
target:
  dsn: "$dsn user=lockvault"
severity:
  medium_after_seconds: 1
  high_after_seconds: 2
  critical_after_seconds: 3
logging:
  level: info
YAML
}
write_config /etc/lockvault/lockvault.yaml ci
# A shorter watchdog than the shipped 30 s, so the SIGSTOP check takes seconds.
inside mkdir -p /etc/systemd/system/lockvault.service.d
inside sh -c 'printf "[Service]\nWatchdogSec=6s\n" > /etc/systemd/system/lockvault.service.d/test-watchdog.conf'
inside systemctl daemon-reload

# --- start ------------------------------------------------------------------------------------
log "systemctl enable --now lockvault"
inside systemctl enable --now lockvault.service >/dev/null 2>&1 || fail "systemctl enable --now lockvault"
prop() { inside systemctl show -P "$1" "${2:-lockvault.service}"; }
is_running() { [[ $(prop ActiveState) == active && $(prop SubState) == running ]]; }
wait_for 60 "lockvault.service active (running)" is_running
status_text=$(prop StatusText)
[[ -n $status_text ]] || fail "no STATUS text"
pass "active (running), STATUS: $status_text"
if inside journalctl --no-pager -u lockvault.service | grep -q 'thread priority'; then fail "thread-priority warning in the journal"; fi
pass "no thread-priority warning at start"

# --- blocking ---------------------------------------------------------------------------------
log "provoking blocking"
{ (echo "BEGIN; UPDATE accounts SET n = n + 1 WHERE id = 1;"; exec sleep 120) | PGAPPNAME=ci-holder psql -Xq -d lockvault_ci >/dev/null 2>&1; } &
holders+=($!)
wait_for 20 "the holder's transaction" sh -c "[ \"\$(psql -XqAt -d lockvault_ci -c \"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ci-holder' AND state = 'idle in transaction'\")\" = 1 ]"
PGAPPNAME=ci-waiter psql -Xq -d lockvault_ci -c "UPDATE accounts SET n = n + 1 WHERE id = 1" >/dev/null 2>&1 &
holders+=($!)
dashboard_critical() {
    [[ $(psql -XqAt -d lockvault_ci -c "SELECT count(*) FROM lock_monitoring.blocking_sessions_dashboard WHERE application_name = 'ci-holder' AND blocking_severity = 'CRITICAL'") -ge 1 ]]
}
wait_for 45 "a CRITICAL ci-holder row in blocking_sessions_dashboard" dashboard_critical
pass "blocking_sessions_dashboard shows the holder as CRITICAL"
journal_critical() { inside journalctl --no-pager -u lockvault LOCKVAULT_SEVERITY=CRITICAL -o cat | grep -q .; }
wait_for 20 "journalctl -u lockvault LOCKVAULT_SEVERITY=CRITICAL" journal_critical
pass "journalctl LOCKVAULT_SEVERITY=CRITICAL: $(inside journalctl --no-pager -u lockvault LOCKVAULT_SEVERITY=CRITICAL -o cat | head -1 | cut -c1-100)"
for p in "${holders[@]}"; do kill "$p" 2>/dev/null || true; done
holders=()
psql -XqAt -d lockvault_ci -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'ci-%'" >/dev/null

# --- reload -----------------------------------------------------------------------------------
log "systemctl reload"
pid_before=$(prop MainPID)
cursor=$(inside journalctl --no-pager -u lockvault.service -n 0 --show-cursor | sed -n 's/^-- cursor: //p')
inside systemctl reload lockvault.service || fail "systemctl reload failed"
# lockvault's own line, not systemd's "Reloading …".
reloaded() { inside journalctl --no-pager -u lockvault.service --after-cursor="$cursor" -o cat | grep -q '^configuration reloaded'; }
wait_for 20 "lockvault's 'configuration reloaded' in the journal" reloaded
wait_for 20 "active (running) after reload" is_running
[[ $(prop MainPID) == "$pid_before" ]] || fail "reload restarted the process"
pass "reload logged ($(inside journalctl --no-pager -u lockvault.service --after-cursor="$cursor" -o cat | grep '^configuration reloaded' | head -1 | cut -c1-80)), same pid, still running"
inside cp /etc/lockvault/lockvault.yaml /root/good.yaml
inside sh -c 'printf "sampling:\n  interval_seconds: -3\n" >> /etc/lockvault/lockvault.yaml'
cursor=$(inside journalctl --no-pager -u lockvault.service -n 0 --show-cursor | sed -n 's/^-- cursor: //p')
inside systemctl reload lockvault.service || true
rejected() { inside journalctl --no-pager -u lockvault.service --after-cursor="$cursor" -o cat | grep -q '^configuration reload rejected'; }
wait_for 20 "the bad config rejected in the journal" rejected
wait_for 20 "active (running) after a bad reload" is_running
[[ $(prop MainPID) == "$pid_before" ]] || fail "a bad reload restarted the process"
pass "bad config on reload rejected, old one kept ($(inside journalctl --no-pager -u lockvault.service --after-cursor="$cursor" -o cat | grep '^configuration reload rejected' | head -1 | cut -c1-90))"
inside cp /root/good.yaml /etc/lockvault/lockvault.yaml
inside systemctl reload lockvault.service

# --- watchdog ---------------------------------------------------------------------------------
log "watchdog: SIGSTOP the daemon"
cursor=$(inside journalctl --no-pager -u lockvault.service -n 0 --show-cursor | sed -n 's/^-- cursor: //p')
inside systemctl kill --signal=SIGSTOP lockvault.service
restarted() { [[ $(prop NRestarts) -ge 1 ]] && is_running; }
wait_for 60 "a watchdog restart (NRestarts >= 1)" restarted
journal=$(inside journalctl --no-pager -u lockvault.service --after-cursor="$cursor" -o cat)
grep -qi 'watchdog' <<<"$journal" || fail "the journal does not say the watchdog fired"
if grep -qiE 'backtrac|\*\*\* Signal' <<<"$journal"; then echo "$journal" >&2; fail "backtracer noise in the journal"; fi
pass "watchdog restarted the stopped daemon (NRestarts=$(prop NRestarts)): '$(grep -i watchdog <<<"$journal" | head -1 | cut -c1-60)', no backtracer noise"

# --- stop -------------------------------------------------------------------------------------
log "systemctl stop"
timeout_stop=$(prop TimeoutStopUSec)
t0=$(date +%s%N)
inside systemctl stop lockvault.service
took_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[[ $(prop Result) == success ]] || fail "stop: Result=$(prop Result)"
[[ $(prop ExecMainStatus) == 0 ]] || fail "stop: exit status $(prop ExecMainStatus)"
(( took_ms < 20000 )) || fail "stop took ${took_ms} ms (TimeoutStopSec $timeout_stop)"
pass "stopped cleanly in ${took_ms} ms (TimeoutStopSec $timeout_stop), exit 0"

# --- template instance ------------------------------------------------------------------------
log "lockvault@prod.service"
write_config /etc/lockvault/prod.yaml prod
inside systemctl start lockvault@prod.service || fail "systemctl start lockvault@prod"
prod_running() { [[ $(prop ActiveState lockvault@prod.service) == active && $(prop SubState lockvault@prod.service) == running ]]; }
wait_for 60 "lockvault@prod active (running)" prod_running
prod_pid=$(prop MainPID lockvault@prod.service)
cmdline=$(inside sh -c "tr '\\0' ' ' < /proc/$prod_pid/cmdline")
grep -q '/etc/lockvault/prod.yaml' <<<"$cmdline" || fail "lockvault@prod runs '$cmdline'"
cluster_rows() { [[ $(psql -XqAt -d lockvault_ci -c "SELECT count(*) FROM lock_monitoring.monitored_cluster_h") -ge 1 ]]; }
wait_for 20 "a recorded cycle" cluster_rows
pass "lockvault@prod runs from /etc/lockvault/prod.yaml (STATUS: $(prop StatusText lockvault@prod.service))"
inside systemctl stop lockvault@prod.service

# --- exposure ---------------------------------------------------------------------------------
exposure=$(inside systemd-analyze security --no-pager lockvault.service | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[[ -n $exposure ]] || fail "systemd-analyze security printed no exposure"
awk -v e="$exposure" 'BEGIN { exit !(e <= 1.5) }' || fail "exposure $exposure > 1.5"
pass "systemd-analyze security lockvault.service: $exposure"

# --- upgrade and purge ------------------------------------------------------------------------
log "upgrade to $v2 while running"
inside systemctl start lockvault.service
wait_for 60 "running before the upgrade" is_running
pid_before=$(prop MainPID)
inside sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /root/$(basename "$deb2")" >"$work/apt2.log" 2>&1 \
    || { cat "$work/apt2.log" >&2; fail "upgrade failed"; }
[[ $(inside dpkg-query -W -f='${Version}' lockvault) == "$v2" ]] || fail "version after upgrade: $(inside dpkg-query -W -f='${Version}' lockvault)"
inside grep -q 'edited locally by scripts/test-systemd.sh' /etc/lockvault/lockvault.yaml || fail "the upgrade replaced the edited conffile"
wait_for 60 "running after the upgrade" is_running
[[ $(prop MainPID) != "$pid_before" ]] || fail "the upgrade did not restart the service"
pass "upgraded to $v2: edited conffile kept, service restarted (pid $pid_before -> $(prop MainPID))"
inside sh -c "DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq lockvault" >"$work/apt3.log" 2>&1 || { cat "$work/apt3.log" >&2; fail "purge failed"; }
inside sh -c '! dpkg-query -W lockvault >/dev/null 2>&1 || [ "$(dpkg-query -W -f="\${Status}" lockvault)" = "unknown ok not-installed" ]' || fail "lockvault still known to dpkg"
for f in /usr/bin/lockvault /etc/lockvault/lockvault.yaml /lib/systemd/system/lockvault.service; do
    inside test ! -e "$f" || fail "$f survives the purge"
done
inside systemctl is-active --quiet lockvault.service && fail "the service still runs after the purge"
pass "apt purge removed the package, its conffile and its units, and stopped the service"

log "all $checks checks passed in $(( $(date +%s) - started ))s"
