-- Synthetic vault history for the dashboard benchmark (bench/run.sh, part 5).
--
--   psql -d VAULT -v days=30 -v blocking_session_s=12345 ... -f bench/history.sql
--
-- Each psql variable named after a lock_monitoring table is that table's rows per day (bench/run.sh
-- passes the rates measured while blockers came and went); missing ones are 0. `analysis_buckets`
-- is lock_wait_analysis rows per hour (analyze_lock_waits() runs hourly). Rows are shaped like the
-- daemon's: hubs keyed by SHA-256, satellites referencing them, closed rows (load_end_date set)
-- spread evenly over the period and a few current ones (load_end_date NULL) at its end; deadlock
-- events, their participants, analysis buckets and resolve decisions stay current, as the daemon
-- leaves them. Keys are sha256 of a synthetic business key, not hash_key(): the bytes don't matter
-- to the dashboards, only their shape and distribution.
\set ON_ERROR_STOP on
\if :{?days} \else \set days 30 \endif
\if :{?analysis_buckets} \else \set analysis_buckets 3 \endif
\if :{?blocking_session_h} \else \set blocking_session_h 0 \endif
\if :{?blocking_session_s} \else \set blocking_session_s 0 \endif
\if :{?lock_activity_h} \else \set lock_activity_h 0 \endif
\if :{?lock_activity_s} \else \set lock_activity_s 0 \endif
\if :{?lock_blocking_l} \else \set lock_blocking_l 0 \endif
\if :{?deadlock_event_h} \else \set deadlock_event_h 0 \endif
\if :{?deadlock_event_s} \else \set deadlock_event_s 0 \endif
\if :{?deadlock_involvement_l} \else \set deadlock_involvement_l 0 \endif
\if :{?deadlock_involvement_s} \else \set deadlock_involvement_s 0 \endif
\if :{?deadlock_counter_s} \else \set deadlock_counter_s 0 \endif
\if :{?monitor_cycle_s} \else \set monitor_cycle_s 0 \endif
\if :{?resolve_decision_s} \else \set resolve_decision_s 0 \endif
SET synchronous_commit = off;
-- The rows are consistent by construction: skip the per-row foreign-key triggers (superuser only).
SET session_replication_role = replica;

CREATE TEMP TABLE n AS
SELECT now() - make_interval(days => :days) AS t0, :days * 86400.0 AS span,
       greatest(1, :days::bigint * :blocking_session_h) AS bsh, :days::bigint * :blocking_session_s AS bss,
       greatest(1, :days::bigint * :lock_activity_h) AS lah, :days::bigint * :lock_activity_s AS las,
       :days::bigint * :lock_blocking_l AS lbl,
       greatest(1, :days::bigint * :deadlock_event_h) AS deh, :days::bigint * :deadlock_event_s AS des,
       greatest(1, :days::bigint * :deadlock_involvement_l) AS dil, :days::bigint * :deadlock_involvement_s AS dis,
       :days::bigint * :deadlock_counter_s AS dcs, :days::bigint * :monitor_cycle_s AS mcs,
       :days::bigint * :resolve_decision_s AS rds, :days::bigint * 24 * :analysis_buckets AS lwa;

CREATE TEMP TABLE k AS SELECT 'synthetic'::text AS sysid, lock_monitoring.hash_key('synthetic') AS cluster, sha256(convert_to('lv_work', 'UTF8')) AS tenant;

CREATE FUNCTION pg_temp.hk(kind text, i bigint) RETURNS bytea LANGUAGE sql IMMUTABLE AS
$$ SELECT sha256(convert_to(kind || ':' || i, 'UTF8')) $$;

INSERT INTO lock_monitoring.monitored_cluster_h SELECT cluster, sysid, t0, 'bench' FROM k, n;

-- Sessions (blockers, waiters, deadlock participants).
INSERT INTO lock_monitoring.blocking_session_h
SELECT pg_temp.hk('s', i), tenant, sysid, 'session', 10000 + (i % 50000)::int, t0 + (i * span / bsh) * interval '1 second', NULL,
       t0 + (i * span / bsh) * interval '1 second', 'bench'
FROM n, k, generate_series(1, bsh) i;

INSERT INTO lock_monitoring.blocking_session_s (blocking_session_hk, load_date, load_end_date, hash_diff, record_source, session_pid,
    user_name, application_name, database_name, backend_type, session_state, blocked_sessions_count, directly_blocked_count,
    blocked_pids, blocking_started, blocking_severity, held_lock_mode, lock_target, is_root_blocker, recommended_action,
    auto_kill_eligible, kill_threshold_seconds, xact_start, query)
SELECT pg_temp.hk('s', (i - 1) % bsh + 1), t, CASE WHEN i <= bss - 3 THEN t + interval '2 seconds' END, pg_temp.hk('d', i), 'bench',
       10000 + (i % 50000)::int, 'app', 'web-' || (i % 7), 'lv_work', 'client backend',
       CASE WHEN i % 2 = 0 THEN 'idle in transaction' ELSE 'active' END, 1 + (i % 3)::int, 1, ARRAY[20000 + (i % 50000)::int],
       t - interval '1 second', (ARRAY['LOW', 'LOW', 'MEDIUM', 'HIGH'])[1 + i % 4], 'ExclusiveLock', 'advisory key ' || (i % 100), true,
       'idle in transaction, holding ExclusiveLock on advisory key ' || (i % 100) || ', blocking 1 — commit it or terminate pid ' || (10000 + i % 50000),
       false, 300, t - interval '3 seconds', 'UPDATE accounts SET balance = balance + $1 WHERE id = $2'
FROM n, generate_series(1, bss) i, LATERAL (SELECT t0 + (i * span / greatest(bss, 1)) * interval '1 second' AS t) tt;

-- Locks (waiting ones and the blockers' held ones).
INSERT INTO lock_monitoring.lock_activity_h
SELECT pg_temp.hk('l', i), tenant, sysid, 'session', 10000 + (i % 50000)::int, t0 + (i * span / lah) * interval '1 second', NULL,
       'advisory', 16384, 'advisory/16384//////0/' || (i % 100) || '/1', 'ExclusiveLock', t0 + (i * span / lah) * interval '1 second', 'bench'
FROM n, k, generate_series(1, lah) i;

INSERT INTO lock_monitoring.lock_activity_s (lock_activity_hk, load_date, load_end_date, hash_diff, record_source, lock_type, lock_mode,
    lock_granted, database_name, lock_target, advisory_key, wait_start, lock_since, blocking_pid, blocked_by_pids, session_pid,
    user_name, application_name, session_state, query)
SELECT pg_temp.hk('l', (i - 1) % lah + 1), t, CASE WHEN i <= las - 5 THEN t + interval '2 seconds' END, pg_temp.hk('d', i), 'bench',
       'advisory', 'ExclusiveLock', i % 2 = 0, 'lv_work', 'advisory key ' || (i % 100), (i % 100)::text,
       CASE WHEN i % 2 = 1 THEN t - interval '1 second' END, t - interval '1 second',
       CASE WHEN i % 2 = 1 THEN 10000 + ((i + 1) % 50000)::int END, CASE WHEN i % 2 = 1 THEN ARRAY[10000 + ((i + 1) % 50000)::int] ELSE '{}' END,
       10000 + (i % 50000)::int, 'app', 'web-' || (i % 7), CASE WHEN i % 2 = 0 THEN 'idle in transaction' ELSE 'active' END,
       'UPDATE accounts SET balance = balance + $1 WHERE id = $2'
FROM n, generate_series(1, las) i, LATERAL (SELECT t0 + (i * span / greatest(las, 1)) * interval '1 second' AS t) tt;

INSERT INTO lock_monitoring.lock_blocking_l
SELECT pg_temp.hk('lb', i), pg_temp.hk('l', (i - 1) % lah + 1), pg_temp.hk('s', (i - 1) % bsh + 1), pg_temp.hk('s', i % bsh + 1),
       t0 + (i * span / greatest(lbl, 1)) * interval '1 second', 'bench'
FROM n, generate_series(1, lbl) i;

-- Deadlocks: events, participants, counters.
INSERT INTO lock_monitoring.deadlock_event_h
SELECT pg_temp.hk('e', i), tenant, sysid, 'lv_work', 'synthetic-' || i, t0 + (i * span / deh) * interval '1 second', 'bench'
FROM n, k, generate_series(1, deh) i;

INSERT INTO lock_monitoring.deadlock_event_s (deadlock_event_hk, load_date, load_end_date, hash_diff, record_source, detected_at,
    database_name, sources, participant_count, participant_pids, victim_pid, details)
SELECT pg_temp.hk('e', j), t + r * interval '1 second', CASE WHEN i + deh <= des THEN t + (r + 1) * interval '1 second' END,
       pg_temp.hk('d', i), 'bench', t, 'lv_work', '{counter,graph,server_log}', 2, ARRAY[10000 + (j % 50000)::int, 10001 + (j % 50000)::int],
       10000 + (j % 50000)::int,
       'Process ' || (10000 + j % 50000) || ' waits for ExclusiveLock on advisory lock [16384,0,8002,1]; blocked by process ' || (10001 + j % 50000) || '.'
FROM n, generate_series(1, des) i,
     LATERAL (SELECT (i - 1) % deh + 1 AS j, (i - 1) / deh AS r) jr,
     LATERAL (SELECT t0 + (j * span / deh) * interval '1 second' AS t) tt;

INSERT INTO lock_monitoring.deadlock_involvement_l
SELECT pg_temp.hk('di', i), pg_temp.hk('e', (i - 1) % deh + 1), pg_temp.hk('s', (i - 1) % bsh + 1),
       t0 + (i * span / dil) * interval '1 second', 'bench'
FROM n, generate_series(1, dil) i;

INSERT INTO lock_monitoring.deadlock_involvement_s (deadlock_involvement_hk, load_date, load_end_date, hash_diff, record_source,
    session_pid, waits_for, blocked_by_pid, is_victim, query)
SELECT pg_temp.hk('di', (i - 1) % dil + 1), t0 + (i * span / greatest(dis, 1)) * interval '1 second',
       CASE WHEN i + dil <= dis THEN t0 + (i * span / greatest(dis, 1) + 1) * interval '1 second' END,
       pg_temp.hk('d', i), 'bench', 10000 + (i % 50000)::int, 'ExclusiveLock on advisory lock [16384,0,8002,1]', 10001 + (i % 50000)::int,
       i % 2 = 0, 'SELECT pg_advisory_xact_lock(8002)'
FROM n, generate_series(1, dis) i;

INSERT INTO lock_monitoring.deadlock_counter_s
SELECT cluster, 'lv_work', t0 + (i * span / greatest(dcs, 1)) * interval '1 second',
       CASE WHEN i < dcs THEN t0 + ((i + 1) * span / greatest(dcs, 1)) * interval '1 second' END, pg_temp.hk('d', i), 'bench', i
FROM n, k, generate_series(1, dcs) i;

-- The daemon's cycle summaries (changes and the once-a-minute heartbeat).
INSERT INTO lock_monitoring.monitor_cycle_s (cluster_hk, load_date, load_end_date, hash_diff, record_source, last_cycle_at, cycle_ms,
    backends, waiting_sessions, blockers, critical_blockers, locks_captured, locks_in_use, lock_table_capacity, server_version_num)
SELECT cluster, t, CASE WHEN i < mcs THEN t0 + ((i + 1) * span / greatest(mcs, 1)) * interval '1 second' END, pg_temp.hk('d', i), 'bench',
       t, 8.5, 12, (i % 3)::int, (i % 2)::int, 0, (i % 5)::int, 8, 46080, 150018
FROM n, k, generate_series(1, mcs) i, LATERAL (SELECT t0 + (i * span / greatest(mcs, 1)) * interval '1 second' AS t) tt;

INSERT INTO lock_monitoring.resolve_decision_s (blocking_session_hk, load_date, hash_diff, record_source, decision, reason, dry_run,
    severity, blocked_sessions_count, blocking_seconds, decided_by)
SELECT pg_temp.hk('s', (i - 1) % bsh + 1), t0 + (i * span / greatest(rds, 1)) * interval '1 second', pg_temp.hk('d', i), 'bench',
       'would_terminate', 'idle in transaction blocker holding locks', true, 'CRITICAL', 3, 400, 'daemon@bench'
FROM n, generate_series(1, rds) i;

-- Hourly lock-wait analysis.
INSERT INTO lock_monitoring.lock_wait_analysis_h
SELECT pg_temp.hk('a', i), tenant, sysid, p, p + interval '1 hour', 'lv_work', 'advisory key ' || (i % :analysis_buckets), 'ExclusiveLock', p + interval '1 hour', 'bench'
FROM n, k, generate_series(1, lwa) i, LATERAL (SELECT date_trunc('hour', t0) + ((i - 1) / :analysis_buckets) * interval '1 hour' AS p) pp;

INSERT INTO lock_monitoring.lock_wait_analysis_s
SELECT pg_temp.hk('a', i), p + interval '1 hour', NULL, pg_temp.hk('d', i), 'bench', 40, 22.5, 0.56, 1.9, 1.2, '{app/web-1,app/web-2}',
       'short transactions: blockers are idle in transaction'
FROM n, generate_series(1, lwa) i, LATERAL (SELECT date_trunc('hour', t0) + ((i - 1) / :analysis_buckets) * interval '1 hour' AS p) pp;

-- What autovacuum would have done by now.
VACUUM (ANALYZE) lock_monitoring.monitored_cluster_h, lock_monitoring.blocking_session_h, lock_monitoring.blocking_session_s,
    lock_monitoring.lock_activity_h, lock_monitoring.lock_activity_s, lock_monitoring.lock_blocking_l, lock_monitoring.deadlock_event_h,
    lock_monitoring.deadlock_event_s, lock_monitoring.deadlock_involvement_l, lock_monitoring.deadlock_involvement_s,
    lock_monitoring.deadlock_counter_s, lock_monitoring.monitor_cycle_s, lock_monitoring.resolve_decision_s,
    lock_monitoring.lock_wait_analysis_h, lock_monitoring.lock_wait_analysis_s;
