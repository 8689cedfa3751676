#!/usr/bin/env bash
# Builds the Debian package: dist/lockvault_<version>_amd64.deb.
#
#   scripts/package-deb.sh                    version from Sources/LockvaultEngine/LockvaultVersion.swift
#   scripts/package-deb.sh --version 0.1.1    another package version (an upgrade test's rebuild)
#   scripts/package-deb.sh --skip-lintian     (a rebuild whose contents were just linted)
#   scripts/package-deb.sh --build-only       only the release build, into .build-release (CI runs it
#                                             beside the test suites; a later package run reuses it)
#
# The binary is a release build with the Swift runtime linked in (--static-swift-stdlib), so the
# host needs no Swift toolchain; what it does link dynamically (libc, libpq, libsystemd, libstdc++)
# is Debian's, and `Depends:` is computed from it by dpkg-shlibdeps. The package holds the units,
# /etc/lockvault/lockvault.yaml (a conffile), the SQL under /usr/share/lockvault/sql, the docs,
# man pages generated from the command definitions, and bash/zsh/fish completions. Installing it
# touches no database and starts nothing: see the README's "Install". lintian must report no
# errors, or this script fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh

version=
lint=1
build_only=0
while (($#)); do
    case $1 in
        --version) version=${2:?--version needs a value}; shift 2 ;;
        --skip-lintian) lint=0; shift ;;
        --build-only) build_only=1; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "package-deb: unknown argument '$1' (see --help)" >&2; exit 64 ;;
    esac
done
source_version=$(lockvault_source_version)
version=${version:-$source_version}
[[ $version =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || { echo "package-deb: '$version' is not a Debian version" >&2; exit 64; }

lockvault_prerequisites build package || exit $?
arch=$(dpkg --print-architecture)
scratch=.build-release
pkg=lockvault_${version}_${arch}
dist=dist
stage=$dist/stage/$pkg

echo "==> release build (static Swift runtime)"
lockvault_build -c release --static-swift-stdlib --scratch-path "$scratch" --product lockvault || exit $?
lockvault_build -c release --scratch-path "$scratch" --product generate-manual || exit $?
bin=$(swift build -c release --scratch-path "$scratch" --show-bin-path)
((build_only)) && { echo "==> release build in $bin"; exit 0; }

echo "==> checking the binary links only system libraries"
outside=$(ldd "$bin/lockvault" | awk '/=>/ { print $1, $3 }' | grep -vE ' /(usr/)?lib/' || true)
missing=$(ldd "$bin/lockvault" | grep 'not found' || true)
if [[ -n $outside$missing ]]; then
    echo "package-deb: the binary needs libraries from outside the system:" >&2; echo "$outside$missing" >&2; exit 1
fi
if ldd "$bin/lockvault" | grep -qE 'libswift|libFoundation|libdispatch|libcurl'; then
    echo "package-deb: the Swift runtime (or libcurl) is linked dynamically:" >&2; ldd "$bin/lockvault" >&2; exit 1
fi

echo "==> staging $stage"
rm -rf "$stage"
install -d "$stage/DEBIAN" "$stage/usr/bin" "$stage/etc/lockvault" "$stage/lib/systemd/system" \
    "$stage/usr/share/lockvault/sql" "$stage/usr/share/doc/lockvault" "$stage/usr/share/man/man1" \
    "$stage/usr/share/bash-completion/completions" "$stage/usr/share/zsh/vendor-completions" \
    "$stage/usr/share/fish/vendor_completions.d"
install -m 0755 "$bin/lockvault" "$stage/usr/bin/lockvault"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/lockvault"
install -m 0644 etc/lockvault.yaml "$stage/etc/lockvault/lockvault.yaml"
install -m 0644 systemd/lockvault.service systemd/lockvault@.service "$stage/lib/systemd/system/"
(cd sql && find . -name '*.sql' -print0 | xargs -0 -I{} install -D -m 0644 {} "$OLDPWD/$stage/usr/share/lockvault/sql/{}")
# README.md stays uncompressed: the units' Documentation= names it.
install -m 0644 README.md "$stage/usr/share/doc/lockvault/README.md"
for doc in docs/operations.md docs/benchmarks.md; do
    gzip -9n <"$doc" >"$stage/usr/share/doc/lockvault/$(basename "$doc").gz"
done
install -m 0644 docs/grafana-dashboard.json "$stage/usr/share/doc/lockvault/grafana-dashboard.json"
gzip -9n <scripts/packaging/changelog >"$stage/usr/share/doc/lockvault/changelog.gz"
install -m 0644 scripts/packaging/copyright "$stage/usr/share/doc/lockvault/copyright"
install -D -m 0644 scripts/packaging/lintian-overrides "$stage/usr/share/lintian/overrides/lockvault"

# Man pages from the ArgumentParser definitions: lockvault(1) and one per subcommand.
man=$(mktemp -d)
"$bin/generate-manual" "$bin/lockvault" --multi-page --section 1 --date "$(date -u -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)" +%Y-%m-%d)" \
    --authors "the lockvault developers" --output-directory "$man" >/dev/null
for page in "$man"/*.1; do gzip -9n <"$page" >"$stage/usr/share/man/man1/$(basename "$page").gz"; done
rm -rf "$man"
"$bin/lockvault" --generate-completion-script bash >"$stage/usr/share/bash-completion/completions/lockvault"
"$bin/lockvault" --generate-completion-script zsh >"$stage/usr/share/zsh/vendor-completions/_lockvault"
"$bin/lockvault" --generate-completion-script fish >"$stage/usr/share/fish/vendor_completions.d/lockvault.fish"
chmod 0644 "$stage"/usr/share/*/*completion*/* "$stage"/usr/share/zsh/vendor-completions/*

echo "==> Depends: from dpkg-shlibdeps"
shlib=$(mktemp -d)
mkdir -p "$shlib/debian"
printf 'Source: lockvault\n\nPackage: lockvault\nArchitecture: any\n' >"$shlib/debian/control"
depends=$(cd "$shlib" && dpkg-shlibdeps -O "$OLDPWD/$stage/usr/bin/lockvault" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
rm -rf "$shlib"
[[ -n $depends ]] || { echo "package-deb: dpkg-shlibdeps computed no dependencies" >&2; exit 1; }
echo "    $depends"

installed_size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<EOF
Package: lockvault
Version: $version
Architecture: $arch
Maintainer: lockvault developers <lockvault@example.org>
Installed-Size: $installed_size
Depends: $depends
Recommends: ca-certificates
Suggests: postgresql-client
Section: database
Priority: optional
Description: PostgreSQL lock monitor with a Data Vault history
 lockvault samples a PostgreSQL cluster's locks every second, tells who is
 blocking whom and how badly (LOW to CRITICAL), detects deadlocks, and records
 what it sees as a change-only Data Vault 2.0 history in the lock_monitoring
 schema, with dashboards for psql. It ends blocking sessions only when told to.
 .
 Runs under systemd as a Type=notify service with a watchdog; one instance per
 monitored cluster (lockvault@NAME reads /etc/lockvault/NAME.yaml).
EOF
echo /etc/lockvault/lockvault.yaml >"$stage/DEBIAN/conffiles"
install -m 0755 scripts/packaging/postinst scripts/packaging/prerm scripts/packaging/postrm "$stage/DEBIAN/"

mkdir -p "$dist"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$dist/$pkg.deb" >/dev/null
rm -rf "$dist/stage"
if ((lint)); then
    echo "==> lintian (errors fail the build; scripts/packaging/lintian-overrides says why two are overridden)"
    lintian --fail-on error "$dist/$pkg.deb"
fi
echo "built $dist/$pkg.deb ($(du -h "$dist/$pkg.deb" | cut -f1)); Depends: $depends"
