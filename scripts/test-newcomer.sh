#!/usr/bin/env bash
# The README's two first commands, exactly as written, on a fresh machine: a clean Debian 12
# root filesystem (debootstrap --variant=minbase, nothing else installed) with only the Swift
# toolchain bound in read-only, in systemd-nspawn. Clones this repository's HEAD into it, then
# runs `scripts/demo.sh` and `scripts/test.sh` and reports how long each took.
#
#   scripts/test-newcomer.sh            (as root; takes a full build: 10-20 minutes)
#
#   LOCKVAULT_SWIFT_DIR       the toolchain to bind (default: the one `swift` on PATH comes from)
#   LOCKVAULT_SWIFT_PACKAGES  a local package mirror to bind read-only, with /etc/gitconfig copied in
#                             so git maps the package URLs to it (default /opt/swift-packages if present)
# The minbase root filesystem is cached in .cache/debian12-minbase (git-ignored).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh
here=$(pwd)
[[ $(id -u) -eq 0 ]] || { echo "test-newcomer: needs root (debootstrap, systemd-nspawn)" >&2; exit 69; }
lockvault_prerequisites systemd || exit $?

swift_bin=$(dirname "$(readlink -f "$(command -v swift)")")
swift_dir=${LOCKVAULT_SWIFT_DIR:-$(dirname "$(dirname "$swift_bin")")}
packages=${LOCKVAULT_SWIFT_PACKAGES:-/opt/swift-packages}
cache=${LOCKVAULT_MINBASE_CACHE:-$here/.cache/debian12-minbase}
lockvault_debian_rootfs "$cache" || exit 1
work=$(mktemp -d "${TMPDIR:-/tmp}/lockvault-newcomer.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp -a "$cache" "$work/root"
git clone -q "$here" "$work/root/src"
binds=(--bind-ro="$swift_dir:/opt/swift")
if [[ -d $packages ]]; then
    binds+=(--bind-ro="$packages:$packages")
    [[ -f /etc/gitconfig ]] && cp /etc/gitconfig "$work/root/etc/gitconfig"
    [[ -f /etc/gitignore ]] && cp /etc/gitignore "$work/root/etc/gitignore"
fi
echo "==> in a fresh Debian 12 ($(cat "$work/root/etc/debian_version")), Swift from $swift_dir: scripts/demo.sh, then scripts/test.sh"
systemd-nspawn --quiet --register=no --keep-unit --directory="$work/root" "${binds[@]}" \
    --setenv=PATH=/opt/swift/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --chdir=/src bash -c '
        set -e
        t0=$(date +%s); scripts/demo.sh; t1=$(date +%s)
        scripts/test.sh; t2=$(date +%s)
        echo "newcomer: scripts/demo.sh took $((t1 - t0)) s, scripts/test.sh took $((t2 - t1)) s"'
