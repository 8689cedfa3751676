#!/usr/bin/env bash
# The newcomer's first command. Builds lockvault, starts a private throwaway PostgreSQL 15
# (.pgdata/, unix socket only), migrates a demo vault, provokes real contention — a blocking
# chain, an idle-in-transaction blocker, an advisory-lock queue, a migration queued behind a long
# transaction with the application queued behind it, and a deadlock — samples it, and
# prints the blocking tree and the dashboards; then ends the contention and tells the morning
# after: the blocking episodes it recorded, one of them as a story and a picture. Run it again any
# time; stop the cluster with scripts/pg-cluster.sh stop.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/lib/common.sh

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "checking prerequisites (installs what is missing: scripts/lib/common.sh)"
lockvault_prerequisites build server || exit $?

step "building lockvault"
lockvault_build --product lockvault || exit $?
bin=$(swift build --show-bin-path)/lockvault

step "starting a private PostgreSQL cluster (scripts/pg-cluster.sh)"
scripts/pg-cluster.sh start
eval "$(scripts/pg-cluster.sh env)"
export PGDATABASE=lockvault_demo
psql -XqAt -d postgres -c "DROP DATABASE IF EXISTS lockvault_demo WITH (FORCE)" -c "CREATE DATABASE lockvault_demo"

step "lockvault migrate — the vault schema lock_monitoring"
"$bin" migrate --dsn "dbname=lockvault_demo" | tail -3

psql -Xq <<'SQL'
CREATE TABLE accounts (id int PRIMARY KEY, balance int);
INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 10) g;
CREATE TABLE orders (id int PRIMARY KEY, total int);
CREATE TABLE shipments (id int PRIMARY KEY);
CREATE TABLE dl (id int PRIMARY KEY, v int);
INSERT INTO dl VALUES (1, 0), (2, 0);
-- The lock-queue pile-up runs as an ordinary role (the resolver never signals a superuser).
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'demo_app') THEN CREATE ROLE demo_app LOGIN; END IF;
END $$;
CREATE TABLE products (id int PRIMARY KEY, name text);
INSERT INTO products VALUES (1, 'lamp');
ALTER TABLE products OWNER TO demo_app;
SQL

pids=() sampler=''
cleanup() {
    [[ -n $sampler ]] && kill "$sampler" 2>/dev/null
    exec 7>&- 2>/dev/null || true
    psql -XqAt -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'demo-%'" >/dev/null 2>&1 || true
    for p in "${pids[@]}"; do pkill -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
# A session that runs its first statements, then sits idle in its transaction until killed.
hold() { local app=$1 sql=$2; { (echo "$sql"; exec sleep 60) 2>/dev/null | PGAPPNAME=$app psql -Xq >/dev/null 2>&1; } 2>/dev/null & pids+=($!); }
# A session whose statement waits.
wait_on() { local app=$1 sql=$2; PGAPPNAME=$app psql -Xq -c "$sql" >/dev/null 2>&1 & pids+=($!); }
waiters() { psql -XAt -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name LIKE 'demo-%'"; }
until_waiters() { for _ in $(seq 1 100); do [[ $(waiters) -ge $1 ]] && return 0; sleep 0.1; done; echo "demo: expected $1 waiting sessions" >&2; return 1; }
# Waits (up to 30 s) until the query's answer is t.
until_true() { local what=$1 sql=$2; for _ in $(seq 1 300); do [[ $(psql -XAt -c "$sql") == t ]] && return 0; sleep 0.1; done; echo "demo: gave up waiting for $what" >&2; return 1; }

step "provoking contention with real sessions"
echo "  • idle in transaction: demo-billing updates account 1 and goes quiet; demo-web waits for the row"
hold demo-billing "BEGIN; UPDATE accounts SET balance = balance - 1 WHERE id = 1;"
sleep 0.3
wait_on demo-web "UPDATE accounts SET balance = balance + 1 WHERE id = 1"
until_waiters 1
echo "  • blocking chain: demo-migration holds orders; demo-report holds shipments and waits for orders; demo-shipper waits for shipments"
hold demo-migration "BEGIN; LOCK TABLE orders IN ACCESS EXCLUSIVE MODE;"
sleep 0.3
hold demo-report "BEGIN; LOCK TABLE shipments IN ACCESS EXCLUSIVE MODE; SELECT count(*) FROM orders;"
until_waiters 2
wait_on demo-shipper "SELECT count(*) FROM shipments"
until_waiters 3
echo "  • advisory-lock queue: demo-worker-1 holds pg_advisory_lock(hashtext('invoice:42')); demo-worker-3 queues, demo-worker-2 behind it"
hold demo-worker-1 "SELECT pg_advisory_lock(hashtext('invoice:42'));"
sleep 0.3
wait_on demo-worker-3 "SELECT pg_advisory_lock(hashtext('invoice:42'))"
until_waiters 4
wait_on demo-worker-2 "SELECT pg_advisory_lock(hashtext('invoice:42'))"
until_waiters 5
echo "  • lock-queue pile-up: demo-analytics reads products in an open transaction; demo-deploy's ALTER TABLE queues"
echo "    for ACCESS EXCLUSIVE behind it; demo-shop-1 and demo-shop-2 queue behind the ALTER TABLE"
# demo-analytics reads from a pipe the demo keeps open (descriptor 7), so that it can COMMIT later.
fifo=$(mktemp -u "${TMPDIR:-/tmp}/lockvault-demo.XXXXXX")
mkfifo "$fifo"
PGUSER=demo_app PGAPPNAME=demo-analytics psql -Xq <"$fifo" >/dev/null 2>&1 & pids+=($!)
exec 7>"$fifo"
rm -f "$fifo"
echo "BEGIN; SELECT count(*) FROM products;" >&7
sleep 0.3
PGUSER=demo_app wait_on demo-deploy "ALTER TABLE products ADD COLUMN sku text"
until_waiters 6
PGUSER=demo_app wait_on demo-shop-1 "SELECT * FROM products"
PGUSER=demo_app wait_on demo-shop-2 "SELECT * FROM products"
until_waiters 8
echo "  • deadlock: demo-dl-a and demo-dl-b update two rows in opposite order"
PGAPPNAME=demo-dl-a psql -Xq -c "BEGIN; UPDATE dl SET v = 1 WHERE id = 1; SELECT pg_sleep(0.5); UPDATE dl SET v = 1 WHERE id = 2; COMMIT;" >/dev/null 2>&1 & pids+=($!)
PGAPPNAME=demo-dl-b psql -Xq -c "BEGIN; UPDATE dl SET v = 2 WHERE id = 2; SELECT pg_sleep(0.5); UPDATE dl SET v = 2 WHERE id = 1; COMMIT;" >/dev/null 2>&1 & pids+=($!)

step "lockvault sample — a cycle every 0.5 s, in the background until the contention is over, recording into the vault (server log read for deadlock details)"
"$bin" sample --cycles 1000000 --interval 0.5 --min-wait 0.5 --server-log "$LOCKVAULT_TEST_SERVER_LOG" >/dev/null 2>&1 & sampler=$!
until_true "the blockers in the vault" "SELECT count(*) >= 7 FROM lock_monitoring.blocking_sessions_dashboard"

step "lockvault blocking — the live blocking tree"
"$bin" blocking

step "lock_monitoring.blocking_sessions_dashboard"
psql -X -P pager=off -c "SELECT session_pid AS pid, blocking_severity AS severity, blocked_sessions_count AS blocked,
    blocking_duration_seconds AS secs, session_state AS state, application_name AS app, blocks_as, held_lock_mode AS held,
    queued_for_mode AS queued_for, lock_target, left(recommended_action, 70) AS recommended_action FROM lock_monitoring.blocking_sessions_dashboard"

step "lock_monitoring.lock_activity_dashboard (waiting locks)"
psql -X -P pager=off -c "SELECT session_pid AS pid, lock_mode, lock_target, lock_duration_seconds AS secs, blocking_pid, block_kind, application_name AS app, advisory_key
    FROM lock_monitoring.lock_activity_dashboard WHERE NOT granted"

step "lockvault resolve --threshold 1 --min-severity LOW --cancel-queued-after 1 — a dry run: the queued ALTER TABLE is the one to cancel"
"$bin" resolve --threshold 1 --min-severity LOW --cancel-queued-after 1 --max 5 || [[ $? -eq 2 ]]

step "lock_monitoring.deadlock_events_dashboard"
until_true "the deadlock in the vault" "SELECT count(*) > 0 FROM lock_monitoring.deadlock_events_dashboard"
psql -X -P pager=off -c "SELECT detected_at, database_name, participant_pids, victim_pid, sources FROM lock_monitoring.deadlock_events_dashboard"

step "the morning after: demo-analytics commits, the other blockers are disconnected, and the sampler records how each episode ended"
echo "COMMIT;" >&7
psql -XqAt -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name IN ('demo-billing', 'demo-migration', 'demo-report', 'demo-worker-1')" >/dev/null
until_true "every episode to end" "SELECT count(*) > 0 AND count(*) FILTER (WHERE ended_by IS NULL) = 0 FROM lock_monitoring.blocking_episodes_dashboard"
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
sampler=''

step "lockvault episodes — every blocking episode the demo caused, newest first"
"$bin" episodes

picture="${TMPDIR:-/tmp}/lockvault-demo-episode.svg"
step "lockvault episode ID --svg $picture — the migration queued behind demo-analytics, told and drawn"
id=$(psql -XAt -c "SELECT episode_id FROM lock_monitoring.blocking_episodes_dashboard WHERE root_application_name = 'demo-analytics' ORDER BY started_at DESC LIMIT 1")
"$bin" episode "$id" --svg "$picture"

step "done — explore with: psql -h $PGHOST -p $PGPORT -U postgres lockvault_demo"
