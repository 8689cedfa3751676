#!/usr/bin/env bash
# A private, throwaway PostgreSQL cluster for the demo, the tests and CI.
#
#   scripts/pg-cluster.sh start    initdb if needed, start (idempotent), print nothing else
#   scripts/pg-cluster.sh stop     fast shutdown (idempotent)
#   scripts/pg-cluster.sh restart  stop + start (the data survives)
#   scripts/pg-cluster.sh status   exit 0 when it accepts connections
#   scripts/pg-cluster.sh env      print `export PG...` lines for a shell: eval "$(scripts/pg-cluster.sh env)"
#   scripts/pg-cluster.sh destroy  stop and delete the data directory
#
# Unix socket only (listen_addresses = ''), its own port, data under $LOCKVAULT_PGDATA
# (default: .pgdata/ in the repository, which git ignores). Run as root, initdb and pg_ctl
# run as the `postgres` OS user, since PostgreSQL refuses to run as root.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGDATA_DIR=${LOCKVAULT_PGDATA:-$here/.pgdata}
PORT=${LOCKVAULT_PGPORT:-54329}
SOCKET_DIR=$PGDATA_DIR/socket
DATA=$PGDATA_DIR/data
LOG=$PGDATA_DIR/server.log

find_bin() {
    local name=$1 dir
    for dir in "${LOCKVAULT_PGBIN:-}" /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
        [[ -n $dir && -x $dir/$name ]] && { echo "$dir/$name"; return 0; }
    done
    command -v "$name" 2>/dev/null && return 0
    echo "pg-cluster: '$name' not found. Install PostgreSQL 15 server binaries (Debian: apt-get install postgresql) or set LOCKVAULT_PGBIN (PostgreSQL 14, 16, 17, 18: scripts/test.sh --pg NN)." >&2
    return 1
}

as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || { echo "pg-cluster: running as root but there is no 'postgres' OS user (apt-get install postgresql creates it)." >&2; exit 1; }
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

running() { [[ -f $DATA/postmaster.pid ]] && as_pg "$PG_CTL" -D "$DATA" status >/dev/null 2>&1; }

ready() { "$PG_ISREADY" -q -h "$SOCKET_DIR" -p "$PORT" >/dev/null 2>&1; }

cmd=${1:-}
case $cmd in
    env)
        echo "export PGHOST='$SOCKET_DIR' PGPORT='$PORT' PGUSER=postgres PGDATABASE=postgres"
        echo "export LOCKVAULT_TEST_SERVER_LOG='$LOG' LOCKVAULT_TEST_PGDATA='$DATA'"
        exit 0 ;;
esac

INITDB=$(find_bin initdb)
PG_CTL=$(find_bin pg_ctl)
PG_ISREADY=$(find_bin pg_isready)

# A data directory belongs to one major version: say so instead of a failed start (stopping
# only signals the postmaster, which any version's pg_ctl does).
if [[ -f $DATA/PG_VERSION && $cmd == start ]]; then
    binary_major=$("$(dirname "$PG_CTL")/postgres" -V | sed -n 's/.* \([0-9][0-9]*\)\..*/\1/p')
    if [[ -n $binary_major && $(cat "$DATA/PG_VERSION") != "$binary_major" ]]; then
        echo "pg-cluster: $DATA is a PostgreSQL $(cat "$DATA/PG_VERSION") cluster but the binaries ($(dirname "$PG_CTL")) are $binary_major: use another LOCKVAULT_PGDATA, or scripts/pg-cluster.sh destroy" >&2
        exit 1
    fi
fi

case $cmd in
    start)
        mkdir -p "$PGDATA_DIR"
        if [[ $(id -u) -eq 0 ]]; then chown postgres: "$PGDATA_DIR"; fi
        if [[ ! -f $DATA/PG_VERSION ]]; then
            as_pg "$INITDB" -D "$DATA" -U postgres --auth-local=trust --auth-host=reject \
                --encoding=UTF8 --locale=C.UTF-8 >"$PGDATA_DIR/initdb.log" 2>&1 \
                || { cat "$PGDATA_DIR/initdb.log" >&2; exit 1; }
            as_pg mkdir -p "$SOCKET_DIR"
            # Members of password_login must give a password over the socket: lets tests prove a
            # password never leaks into an error. Everyone else is trusted (throwaway cluster).
            as_pg sh -c "cat > '$DATA/pg_hba.conf'" <<HBA
local all +password_login scram-sha-256
local all all trust
HBA
            as_pg sh -c "cat >> '$DATA/postgresql.conf'" <<CONF
listen_addresses = ''
port = $PORT
unix_socket_directories = '$SOCKET_DIR'
max_connections = ${LOCKVAULT_PG_MAX_CONNECTIONS:-300}
max_prepared_transactions = 20
log_lock_waits = on
deadlock_timeout = 1s
log_line_prefix = '%m [%p] %q%u@%d '
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
        fi
        if running && ready; then exit 0; fi
        touch "$LOG"; if [[ $(id -u) -eq 0 ]]; then chown postgres: "$LOG"; fi
        as_pg "$PG_CTL" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null \
            || { echo "pg-cluster: server failed to start; last log lines:" >&2; tail -20 "$LOG" >&2; exit 1; }
        for _ in $(seq 1 100); do ready && exit 0; sleep 0.1; done
        echo "pg-cluster: server started but does not accept connections on $SOCKET_DIR:$PORT" >&2
        exit 1 ;;
    stop)
        [[ -d $DATA ]] || exit 0
        if running; then as_pg "$PG_CTL" -D "$DATA" -m fast -w -t 60 stop >/dev/null; fi
        exit 0 ;;
    restart)
        "$0" stop && "$0" start ;;
    status)
        ready ;;
    destroy)
        "$0" stop || true
        rm -rf "$PGDATA_DIR" ;;
    *)
        echo "usage: $0 start|stop|restart|status|env|destroy" >&2
        exit 2 ;;
esac
