-- Migration 007: record_cycle(jsonb) — how the daemon writes one sampling cycle.
--
-- One call per cycle, in one transaction: hubs are inserted if new, a satellite row is added
-- only when its hash_diff differs from the current row, and current rows of things no longer
-- seen get their load_end_date. Replaying the same cycle (a retry after a failed commit)
-- changes nothing, so retries never duplicate rows.

CREATE OR REPLACE FUNCTION lock_monitoring.session_hk(p_sysid text, p_kind text, p_pid integer, p_start timestamptz, p_gid text)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT CASE WHEN p_kind = 'prepared'
                THEN lock_monitoring.hash_key(p_sysid, 'prepared', p_gid)
                ELSE lock_monitoring.hash_key(p_sysid, 'session', p_pid::text, lock_monitoring.bk_timestamp(p_start)) END
$fn$;
COMMENT ON FUNCTION lock_monitoring.session_hk(text, text, integer, timestamptz, text) IS
    'Hash key of blocking_session_h: (cluster, pid, backend_start) for sessions, (cluster, gid) for prepared transactions.';

CREATE OR REPLACE FUNCTION lock_monitoring.record_cycle(p jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
AS $fn$
DECLARE
    v_sysid   text := p->>'system_identifier';
    v_src     text := p->>'record_source';
    v_at      timestamptz := (p->>'captured_at')::timestamptz;
    v_cluster bytea := hash_key(v_sysid);
    v_n       integer;
    v_stats   jsonb := '{}';
BEGIN
    IF v_sysid IS NULL OR v_src IS NULL OR v_at IS NULL THEN
        RAISE EXCEPTION 'record_cycle: system_identifier, record_source and captured_at are required' USING ERRCODE = '22023';
    END IF;

    INSERT INTO monitored_cluster_h (cluster_hk, system_identifier, load_date, record_source)
    VALUES (v_cluster, v_sysid, v_at, v_src) ON CONFLICT DO NOTHING;

    -- Sessions: every session or prepared transaction named anywhere in this cycle.
    INSERT INTO blocking_session_h (blocking_session_hk, tenant_hk, system_identifier, session_kind, session_pid, session_start, prepared_gid, load_date, record_source)
    SELECT DISTINCT ON (hk) hk, hash_key(coalesce(s.database_name, '')), v_sysid, s.kind, s.pid, s.backend_start, s.gid, v_at, v_src
    FROM (SELECT session_hk(v_sysid, x.kind, x.pid, x.backend_start, x.gid) AS hk, x.*
          FROM jsonb_to_recordset(coalesce(p->'sessions', '[]')) AS x(kind text, pid integer, backend_start timestamptz, gid text, database_name text)) s
    ON CONFLICT DO NOTHING;

    -- Locks.
    INSERT INTO lock_activity_h (lock_activity_hk, tenant_hk, system_identifier, holder_kind, session_pid, session_start, prepared_gid,
                                 lock_type, database_oid, lock_target_key, lock_mode, load_date, record_source)
    SELECT DISTINCT ON (hk) hk, hash_key(coalesce(database_name, '')), v_sysid, kind, pid, backend_start, gid, lock_type, database_oid, target_key, mode, v_at, v_src
    FROM (SELECT hash_key(v_sysid, x.kind, x.pid::text, bk_timestamp(x.backend_start), x.gid, x.lock_type, x.database_oid::text, x.target_key, x.mode) AS hk, x.*
          FROM jsonb_to_recordset(coalesce(p->'locks', '[]')) AS x(kind text, pid integer, backend_start timestamptz, gid text, lock_type text,
               database_oid oid, target_key text, mode text, database_name text)) l
    ON CONFLICT DO NOTHING;

    UPDATE lock_activity_s s SET load_end_date = v_at
    FROM lock_activity_h h
    WHERE h.lock_activity_hk = s.lock_activity_hk AND h.system_identifier = v_sysid AND s.load_end_date IS NULL
      AND NOT EXISTS (
          SELECT 1 FROM jsonb_to_recordset(coalesce(p->'locks', '[]')) AS x(kind text, pid integer, backend_start timestamptz, gid text, lock_type text,
                   database_oid oid, target_key text, mode text, hash_diff text)
          WHERE hash_key(v_sysid, x.kind, x.pid::text, bk_timestamp(x.backend_start), x.gid, x.lock_type, x.database_oid::text, x.target_key, x.mode) = s.lock_activity_hk
            AND decode(x.hash_diff, 'hex') = s.hash_diff);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_stats := v_stats || jsonb_build_object('locks_ended', v_n);

    INSERT INTO lock_activity_s (lock_activity_hk, load_date, hash_diff, record_source, lock_type, lock_mode, lock_granted, database_name,
                                 relation_name, lock_target, advisory_key, wait_start, lock_since, blocking_pid, blocked_by_pids, session_pid,
                                 user_name, application_name, client_addr, session_state, query)
    SELECT DISTINCT ON (k.hk) k.hk, v_at, decode(k.hash_diff, 'hex'), v_src, k.lock_type, k.mode, k.granted, k.database_name, k.relation_name, k.target,
           k.advisory_key, k.wait_start, coalesce(k.lock_since, v_at), k.blocking_pid, k.blocked_by, k.pid, k.user_name, k.application_name,
           k.client_addr, k.state, k.query
    FROM (SELECT hash_key(v_sysid, x.kind, x.pid::text, bk_timestamp(x.backend_start), x.gid, x.lock_type, x.database_oid::text, x.target_key, x.mode) AS hk, x.*
          FROM jsonb_to_recordset(coalesce(p->'locks', '[]')) AS x(kind text, pid integer, backend_start timestamptz, gid text, lock_type text,
               database_oid oid, target_key text, mode text, hash_diff text, granted boolean, database_name text, relation_name text, target text,
               advisory_key text, wait_start timestamptz, lock_since timestamptz, blocking_pid integer, blocked_by integer[], user_name text,
               application_name text, client_addr text, state text, query text)) k
    WHERE NOT EXISTS (SELECT 1 FROM lock_activity_s s WHERE s.lock_activity_hk = k.hk AND s.load_end_date IS NULL);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_stats := v_stats || jsonb_build_object('lock_rows', v_n);

    -- Blockers.
    UPDATE blocking_session_s s SET load_end_date = v_at
    FROM blocking_session_h h
    WHERE h.blocking_session_hk = s.blocking_session_hk AND h.system_identifier = v_sysid AND s.load_end_date IS NULL
      AND NOT EXISTS (
          SELECT 1 FROM jsonb_to_recordset(coalesce(p->'blockers', '[]')) AS x(kind text, pid integer, backend_start timestamptz, gid text, hash_diff text)
          WHERE session_hk(v_sysid, x.kind, x.pid, x.backend_start, x.gid) = s.blocking_session_hk AND decode(x.hash_diff, 'hex') = s.hash_diff);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_stats := v_stats || jsonb_build_object('blockers_ended', v_n);

    INSERT INTO blocking_session_s (blocking_session_hk, load_date, hash_diff, record_source, session_pid, prepared_gid, user_name, application_name,
                                    database_name, client_addr, backend_type, session_state, is_superuser, blocked_sessions_count, directly_blocked_count,
                                    blocked_pids, blocking_started, blocking_severity, held_lock_mode, lock_target, relation_name, is_root_blocker,
                                    in_deadlock_cycle, recommended_action, auto_kill_eligible, kill_threshold_seconds, xact_start, query)
    SELECT DISTINCT ON (b.hk) b.hk, v_at, decode(b.hash_diff, 'hex'), v_src, b.pid, b.gid, b.user_name, b.application_name, b.database_name, b.client_addr,
           b.backend_type, b.state, coalesce(b.is_superuser, false), b.blocked_count, b.direct_count, b.blocked_pids, b.blocking_started, b.severity,
           b.held_mode, b.target, b.relation_name, b.is_root, coalesce(b.in_cycle, false), b.recommended_action, b.auto_kill_eligible,
           b.kill_threshold_seconds, b.xact_start, b.query
    FROM (SELECT session_hk(v_sysid, x.kind, x.pid, x.backend_start, x.gid) AS hk, x.*
          FROM jsonb_to_recordset(coalesce(p->'blockers', '[]')) AS x(kind text, pid integer, backend_start timestamptz, gid text, hash_diff text,
               user_name text, application_name text, database_name text, client_addr text, backend_type text, state text, is_superuser boolean,
               blocked_count integer, direct_count integer, blocked_pids integer[], blocking_started timestamptz, severity text, held_mode text,
               target text, relation_name text, is_root boolean, in_cycle boolean, recommended_action text, auto_kill_eligible boolean,
               kill_threshold_seconds double precision, xact_start timestamptz, query text)) b
    WHERE NOT EXISTS (SELECT 1 FROM blocking_session_s s WHERE s.blocking_session_hk = b.hk AND s.load_end_date IS NULL);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_stats := v_stats || jsonb_build_object('blocker_rows', v_n);

    -- Which waiting lock waited for which blocker.
    INSERT INTO lock_blocking_l (lock_blocking_hk, lock_activity_hk, blocking_session_hk, blocked_session_hk, load_date, record_source)
    SELECT DISTINCT ON (hk) hk, lock_hk, blocker_hk, waiter_hk, v_at, v_src
    FROM (SELECT hash_key(encode(w.lock_hk, 'hex'), encode(w.blocker_hk, 'hex')) AS hk, w.*
          FROM (SELECT hash_key(v_sysid, x.kind, x.pid::text, bk_timestamp(x.backend_start), x.gid, x.lock_type, x.database_oid::text, x.target_key, x.mode) AS lock_hk,
                       session_hk(v_sysid, x.blocker_kind, x.blocker_pid, x.blocker_start, x.blocker_gid) AS blocker_hk,
                       session_hk(v_sysid, x.kind, x.pid, x.backend_start, x.gid) AS waiter_hk
                FROM jsonb_to_recordset(coalesce(p->'waits', '[]')) AS x(kind text, pid integer, backend_start timestamptz, gid text, lock_type text,
                     database_oid oid, target_key text, mode text, blocker_kind text, blocker_pid integer, blocker_start timestamptz, blocker_gid text)) w) l
    WHERE EXISTS (SELECT 1 FROM blocking_session_h h WHERE h.blocking_session_hk = l.blocker_hk)
    ON CONFLICT DO NOTHING;

    -- Deadlock counters, when they change.
    UPDATE deadlock_counter_s s SET load_end_date = v_at
    FROM jsonb_each_text(coalesce(p->'deadlock_counters', '{}')) AS c(database_name, deadlocks)
    WHERE s.cluster_hk = v_cluster AND s.database_name = c.database_name AND s.load_end_date IS NULL AND s.deadlocks <> c.deadlocks::bigint;
    INSERT INTO deadlock_counter_s (cluster_hk, database_name, load_date, hash_diff, record_source, deadlocks)
    SELECT v_cluster, c.database_name, v_at, hash_key(c.deadlocks), v_src, c.deadlocks::bigint
    FROM jsonb_each_text(coalesce(p->'deadlock_counters', '{}')) AS c(database_name, deadlocks)
    WHERE NOT EXISTS (SELECT 1 FROM deadlock_counter_s s WHERE s.cluster_hk = v_cluster AND s.database_name = c.database_name AND s.load_end_date IS NULL);

    -- Deadlocks.
    INSERT INTO deadlock_event_h (deadlock_event_hk, tenant_hk, system_identifier, database_name, event_key, load_date, record_source)
    SELECT hash_key(v_sysid, x.database_name, x.event_key), hash_key(x.database_name), v_sysid, x.database_name, x.event_key, v_at, v_src
    FROM jsonb_to_recordset(coalesce(p->'deadlocks', '[]')) AS x(database_name text, event_key text)
    ON CONFLICT DO NOTHING;

    UPDATE deadlock_event_s s SET load_end_date = v_at
    FROM jsonb_to_recordset(coalesce(p->'deadlocks', '[]')) AS x(database_name text, event_key text, hash_diff text)
    WHERE s.deadlock_event_hk = hash_key(v_sysid, x.database_name, x.event_key) AND s.load_end_date IS NULL AND s.hash_diff <> decode(x.hash_diff, 'hex');

    INSERT INTO deadlock_event_s (deadlock_event_hk, load_date, hash_diff, record_source, detected_at, database_name, sources, participant_count,
                                  participant_pids, victim_pid, details)
    SELECT d.hk, v_at, decode(d.hash_diff, 'hex'), v_src, d.detected_at, d.database_name, d.sources, coalesce(array_length(d.participant_pids, 1), 0),
           coalesce(d.participant_pids, '{}'), d.victim_pid, d.details
    FROM (SELECT hash_key(v_sysid, x.database_name, x.event_key) AS hk, x.*
          FROM jsonb_to_recordset(coalesce(p->'deadlocks', '[]')) AS x(database_name text, event_key text, hash_diff text, detected_at timestamptz,
               sources text[], participant_pids integer[], victim_pid integer, details text)) d
    WHERE NOT EXISTS (SELECT 1 FROM deadlock_event_s s WHERE s.deadlock_event_hk = d.hk AND s.load_end_date IS NULL);
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_stats := v_stats || jsonb_build_object('deadlock_rows', v_n);

    INSERT INTO deadlock_involvement_l (deadlock_involvement_hk, deadlock_event_hk, blocking_session_hk, load_date, record_source)
    SELECT DISTINCT ON (hk) hk, ev, ses, v_at, v_src
    FROM (SELECT hash_key(encode(hash_key(v_sysid, x.database_name, x.event_key), 'hex'), x.pid::text) AS hk,
                 hash_key(v_sysid, x.database_name, x.event_key) AS ev,
                 session_hk(v_sysid, 'session', x.pid, x.backend_start, NULL) AS ses
          FROM jsonb_to_recordset(coalesce(p->'deadlock_participants', '[]')) AS x(database_name text, event_key text, pid integer, backend_start timestamptz)) i
    WHERE EXISTS (SELECT 1 FROM blocking_session_h h WHERE h.blocking_session_hk = i.ses)
    ON CONFLICT DO NOTHING;

    UPDATE deadlock_involvement_s s SET load_end_date = v_at
    FROM jsonb_to_recordset(coalesce(p->'deadlock_participants', '[]')) AS x(database_name text, event_key text, pid integer, hash_diff text)
    WHERE s.deadlock_involvement_hk = hash_key(encode(hash_key(v_sysid, x.database_name, x.event_key), 'hex'), x.pid::text)
      AND s.load_end_date IS NULL AND s.hash_diff <> decode(x.hash_diff, 'hex');

    INSERT INTO deadlock_involvement_s (deadlock_involvement_hk, load_date, hash_diff, record_source, session_pid, waits_for, blocked_by_pid, is_victim, query)
    SELECT i.hk, v_at, decode(i.hash_diff, 'hex'), v_src, i.pid, i.waits_for, i.blocked_by, coalesce(i.is_victim, false), i.query
    FROM (SELECT hash_key(encode(hash_key(v_sysid, x.database_name, x.event_key), 'hex'), x.pid::text) AS hk, x.*
          FROM jsonb_to_recordset(coalesce(p->'deadlock_participants', '[]')) AS x(database_name text, event_key text, pid integer, hash_diff text,
               waits_for text, blocked_by integer, is_victim boolean, query text)) i
    WHERE EXISTS (SELECT 1 FROM deadlock_involvement_l l WHERE l.deadlock_involvement_hk = i.hk)
      AND NOT EXISTS (SELECT 1 FROM deadlock_involvement_s s WHERE s.deadlock_involvement_hk = i.hk AND s.load_end_date IS NULL);

    -- Resolve decisions (events: inserted, never superseded).
    INSERT INTO resolve_decision_s (blocking_session_hk, load_date, hash_diff, record_source, decision, reason, dry_run, action, outcome, severity,
                                    blocked_sessions_count, blocking_seconds, decided_by)
    SELECT session_hk(v_sysid, x.kind, x.pid, x.backend_start, x.gid), coalesce(x.decided_at, v_at),
           hash_key(x.decision, x.reason, x.outcome), v_src, x.decision, x.reason, x.dry_run, x.action, x.outcome, x.severity,
           x.blocked_count, x.blocking_seconds, x.decided_by
    FROM jsonb_to_recordset(coalesce(p->'decisions', '[]')) AS x(kind text, pid integer, backend_start timestamptz, gid text, decided_at timestamptz,
         decision text, reason text, dry_run boolean, action text, outcome text, severity text, blocked_count integer, blocking_seconds double precision,
         decided_by text)
    WHERE EXISTS (SELECT 1 FROM blocking_session_h h WHERE h.blocking_session_hk = session_hk(v_sysid, x.kind, x.pid, x.backend_start, x.gid))
    ON CONFLICT DO NOTHING;

    -- Gap in observation, if the daemon reports one.
    IF p ? 'gap' AND jsonb_typeof(p->'gap') = 'object' THEN
        INSERT INTO monitor_gap_s (cluster_hk, load_date, hash_diff, record_source, gap_start, gap_end, reason)
        VALUES (v_cluster, (p->'gap'->>'start')::timestamptz, hash_key(p->'gap'->>'start', p->'gap'->>'end', p->'gap'->>'reason'), v_src,
                (p->'gap'->>'start')::timestamptz, (p->'gap'->>'end')::timestamptz, p->'gap'->>'reason')
        ON CONFLICT DO NOTHING;
    END IF;

    -- Cycle summary: a row when it changes, else a heartbeat at most every heartbeat_seconds.
    IF p ? 'summary' THEN
        DECLARE
            v_sum jsonb := p->'summary';
            -- Not the backend count (it moves with every connection) nor the lock-table reading
            -- (taken once a minute): either would defeat change-only writes.
            v_diff bytea := hash_key(v_sum->>'waiting_sessions', v_sum->>'blockers', v_sum->>'critical_blockers',
                                     v_sum->>'locks_captured', v_sum->>'server_version_num');
            v_cur record;
        BEGIN
            SELECT load_date, hash_diff, last_cycle_at INTO v_cur FROM monitor_cycle_s
            WHERE cluster_hk = v_cluster AND load_end_date IS NULL;
            IF NOT FOUND OR v_cur.hash_diff <> v_diff
               OR v_cur.last_cycle_at < v_at - make_interval(secs => coalesce((p->>'heartbeat_seconds')::float8, 60)) THEN
                UPDATE monitor_cycle_s SET load_end_date = v_at WHERE cluster_hk = v_cluster AND load_end_date IS NULL AND load_date < v_at;
                INSERT INTO monitor_cycle_s (cluster_hk, load_date, hash_diff, record_source, cluster_name, last_cycle_at, cycle_ms, backends,
                                             waiting_sessions, blockers, critical_blockers, locks_captured, locks_in_use, lock_table_capacity,
                                             server_version_num)
                VALUES (v_cluster, v_at, v_diff, v_src, p->>'cluster_name', v_at, (v_sum->>'cycle_ms')::float8, (v_sum->>'backends')::int,
                        (v_sum->>'waiting_sessions')::int, (v_sum->>'blockers')::int, (v_sum->>'critical_blockers')::int,
                        (v_sum->>'locks_captured')::int, (v_sum->>'locks_in_use')::int, (v_sum->>'lock_table_capacity')::int,
                        (v_sum->>'server_version_num')::int)
                ON CONFLICT DO NOTHING;
            END IF;
        END;
    END IF;

    RETURN v_stats;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.record_cycle(jsonb) IS
    'Writes one lockvault sampling cycle (idempotent: replaying the same cycle changes nothing). Called by the daemon, one transaction per cycle.';
