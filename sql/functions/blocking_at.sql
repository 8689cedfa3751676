-- The blocking forest as the vault recorded it at a past moment: `lockvault blocking --at TS`,
-- or in psql `SELECT * FROM lock_monitoring.blocking_at('2025-06-01 03:12')`.
--
-- The history is change-only: a satellite row holds from its load_date until its load_end_date
-- (NULL while current), so the state at p_at is every row with load_date <= p_at < load_end_date.
-- One row per session (or prepared transaction) that waited, blocked, or was waited for at that
-- moment: its waiting lock and whom it waited for (lock_activity_s), its blocker state if it
-- blocked (blocking_session_s), and every lock of it then current, in `locks`, from which
-- lockvault rebuilds the tree exactly as the live `blocking` draws it.
--
-- A moment the vault can't speak for is refused rather than shown as an empty tree:
-- - before the retained history (SQLSTATE 22023): the cluster's first cycle summary still kept;
--   when retention has removed the beginning, from the end of the oldest summary row kept, since
--   lock rows that ended before the retention's cutoff are gone;
-- - in the future, or for a cluster the vault does not hold (22023);
-- - while lockvault was not watching (P0002): inside a recorded gap (monitor_gap_s), or after the
--   cluster's last record when its daemon has gone quiet (the fleet's rule: no record for 90 s).
--
-- What it reads: every partition of lock_activity_s and blocking_session_s up to p_at (a row
-- current at p_at may have been written any day before). It runs when a DBA asks, not per cycle.

CREATE OR REPLACE FUNCTION lock_monitoring.blocking_at(p_at timestamptz, p_cluster text DEFAULT NULL)
RETURNS TABLE (cluster_name text, system_identifier text, session_pid integer, prepared_gid text, backend_start timestamptz,
               user_name text, application_name text, client_addr text, database_name text, backend_type text, session_state text,
               is_superuser boolean, xact_start timestamptz, query text,
               waiting_for integer[], block_kind text, wait_mode text, wait_target text, wait_start timestamptz,
               blocking_severity text, blocked_sessions_count integer, blocked_pids integer[], blocking_started timestamptz,
               is_root_blocker boolean, in_deadlock_cycle boolean, blocks_as text, held_lock_mode text, queued_for_mode text,
               lock_target text, recommended_action text, locks jsonb, recorded_at timestamptz)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, lock_monitoring
AS $fn$
#variable_conflict use_column
DECLARE
    v_cluster  record;
    v_n        integer;
    v_names    text;
    v_first    timestamptz;
    v_from     timestamptz;
    v_last     timestamptz;
    v_gap      record;
    v_label    text;
BEGIN
    IF p_at IS NULL THEN
        RAISE EXCEPTION 'blocking_at: the moment is required' USING ERRCODE = '22023';
    END IF;
    IF p_at > now() THEN
        RAISE EXCEPTION 'the moment % is in the future (now is %)', p_at, now() USING ERRCODE = '22023';
    END IF;

    -- The cluster: named (its cluster_name or system_identifier), or the vault's only one.
    SELECT count(*), string_agg(CASE WHEN coalesce(c.name, '') = '' THEN h.system_identifier ELSE format('%s (%s)', c.name, h.system_identifier) END,
                                ', ' ORDER BY c.name)
    INTO v_n, v_names
    FROM monitored_cluster_h h
    LEFT JOIN LATERAL (SELECT m.cluster_name AS name FROM monitor_cycle_s m WHERE m.cluster_hk = h.cluster_hk
                       ORDER BY m.load_date DESC LIMIT 1) c ON true;
    IF v_n = 0 THEN
        RAISE EXCEPTION 'nothing is recorded in this vault yet' USING ERRCODE = 'P0002';
    END IF;
    SELECT h.cluster_hk, h.system_identifier AS sysid, h.load_date, c.name INTO v_cluster
    FROM monitored_cluster_h h
    LEFT JOIN LATERAL (SELECT m.cluster_name AS name FROM monitor_cycle_s m WHERE m.cluster_hk = h.cluster_hk
                       ORDER BY m.load_date DESC LIMIT 1) c ON true
    -- An unnamed cluster is '-', as blocking_episodes_dashboard and fleet_status show it.
    WHERE p_cluster IS NULL OR coalesce(nullif(c.name, ''), '-') = p_cluster OR h.system_identifier = p_cluster
    ORDER BY c.name
    LIMIT 2;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    IF v_n = 0 THEN
        RAISE EXCEPTION 'no cluster "%" in this vault; it holds %', p_cluster, v_names USING ERRCODE = '22023';
    ELSIF p_cluster IS NULL AND (SELECT count(*) FROM monitored_cluster_h) > 1 THEN
        RAISE EXCEPTION 'this vault holds several clusters: %; name one', v_names USING ERRCODE = '22023';
    END IF;
    v_label := CASE WHEN coalesce(v_cluster.name, '') = '' THEN v_cluster.sysid ELSE format('"%s"', v_cluster.name) END;

    -- Where its retained history begins.
    SELECT min(m.load_date) INTO v_first FROM monitor_cycle_s m WHERE m.cluster_hk = v_cluster.cluster_hk;
    IF v_first IS NULL THEN
        RAISE EXCEPTION 'nothing is recorded for cluster % yet', v_label USING ERRCODE = 'P0002';
    END IF;
    v_from := v_first;
    IF v_first > v_cluster.load_date THEN
        -- Retention removed the beginning: complete only from the end of the oldest summary row kept.
        SELECT coalesce(m.load_end_date, m.load_date) INTO v_from FROM monitor_cycle_s m
        WHERE m.cluster_hk = v_cluster.cluster_hk AND m.load_date = v_first;
    END IF;
    IF p_at < v_from THEN
        RAISE EXCEPTION 'the moment % is before the retained history of cluster %, which begins at %', p_at, v_label, v_from
            USING ERRCODE = '22023';
    END IF;

    -- Was lockvault watching?
    SELECT g.gap_start, g.gap_end, g.reason INTO v_gap FROM monitor_gap_s g
    WHERE g.cluster_hk = v_cluster.cluster_hk AND g.gap_start <= p_at AND g.gap_end > p_at
    ORDER BY g.gap_start LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'lockvault was not watching cluster % at %: nothing was observed from % to % (%)',
            v_label, p_at, v_gap.gap_start, v_gap.gap_end, v_gap.reason USING ERRCODE = 'P0002';
    END IF;
    SELECT max(m.last_cycle_at) INTO v_last FROM monitor_cycle_s m WHERE m.cluster_hk = v_cluster.cluster_hk AND m.load_end_date IS NULL;
    IF v_last IS NOT NULL AND v_last < now() - interval '90 seconds' AND p_at > v_last + interval '90 seconds' THEN
        RAISE EXCEPTION 'lockvault was not watching cluster % at %: its last record is from %, and nothing came after it',
            v_label, p_at, v_last USING ERRCODE = 'P0002';
    END IF;

    RETURN QUERY
    WITH l AS (
        SELECT session_hk(h.system_identifier, h.holder_kind, h.session_pid, h.session_start, h.prepared_gid) AS hk,
               h.holder_kind, h.session_pid AS pid, h.session_start, h.prepared_gid AS gid, h.lock_type, h.database_oid,
               h.lock_target_key, h.lock_mode, s.lock_granted, s.database_name, s.relation_name, s.lock_target, s.wait_start, s.lock_since,
               s.blocked_by_pids, s.block_kind, s.user_name, s.application_name, s.client_addr, s.session_state, s.query, s.load_date
        FROM lock_activity_s s JOIN lock_activity_h h USING (lock_activity_hk)
        WHERE h.system_identifier = v_cluster.sysid AND s.load_date <= p_at AND (s.load_end_date IS NULL OR s.load_end_date > p_at)
    ),
    b AS (
        SELECT h.blocking_session_hk AS hk, h.session_kind, h.session_pid AS pid, h.session_start, h.prepared_gid AS gid,
               s.user_name, s.application_name, s.client_addr, s.database_name, s.backend_type, s.session_state, s.is_superuser, s.xact_start,
               s.query, s.blocking_severity, s.blocked_sessions_count, s.blocked_pids, s.blocking_started, s.is_root_blocker, s.in_deadlock_cycle,
               s.blocks_as, s.held_lock_mode, s.queued_for_mode, s.lock_target, s.recommended_action, s.load_date
        FROM blocking_session_s s JOIN blocking_session_h h USING (blocking_session_hk)
        WHERE h.system_identifier = v_cluster.sysid AND s.load_date <= p_at AND (s.load_end_date IS NULL OR s.load_end_date > p_at)
    ),
    -- Whom the waiting locks waited for (0: a prepared transaction).
    awaited AS (SELECT DISTINCT unnest(l.blocked_by_pids) AS pid FROM l WHERE NOT l.lock_granted),
    who AS (
        SELECT DISTINCT ON (w.hk) w.hk, w.kind, w.pid, w.session_start, w.gid
        FROM (SELECT l.hk, l.holder_kind AS kind, l.pid, l.session_start, l.gid FROM l
              WHERE NOT l.lock_granted OR l.pid IN (SELECT a.pid FROM awaited a)
                 OR (l.holder_kind = 'prepared' AND 0 IN (SELECT a.pid FROM awaited a))
              UNION ALL
              SELECT b.hk, b.session_kind, b.pid, b.session_start, b.gid FROM b) w
    )
    SELECT v_cluster.name, v_cluster.sysid, w.pid, w.gid, w.session_start,
           coalesce(bb.user_name, lw.user_name, la.user_name), coalesce(bb.application_name, lw.application_name, la.application_name),
           coalesce(bb.client_addr, lw.client_addr, la.client_addr), coalesce(bb.database_name, lw.database_name, la.database_name),
           bb.backend_type, coalesce(bb.session_state, lw.session_state, la.session_state), bb.is_superuser, bb.xact_start,
           coalesce(bb.query, lw.query, la.query),
           lw.blocked_by_pids, lw.block_kind, lw.lock_mode, lw.lock_target, lw.wait_start,
           bb.blocking_severity, bb.blocked_sessions_count, bb.blocked_pids, bb.blocking_started, bb.is_root_blocker, bb.in_deadlock_cycle,
           bb.blocks_as, bb.held_lock_mode, bb.queued_for_mode, bb.lock_target, bb.recommended_action,
           la.locks, greatest(bb.load_date, la.recorded_at)
    FROM who w
    LEFT JOIN b bb ON bb.hk = w.hk
    -- Its waiting lock (the oldest, if it waited for several).
    LEFT JOIN LATERAL (SELECT * FROM l WHERE l.hk = w.hk AND NOT l.lock_granted ORDER BY l.wait_start NULLS LAST, l.lock_target LIMIT 1) lw ON true
    LEFT JOIN LATERAL (
        -- The session's attributes as its newest lock row has them.
        SELECT (array_agg(l.user_name ORDER BY l.load_date DESC))[1] AS user_name,
               (array_agg(l.application_name ORDER BY l.load_date DESC))[1] AS application_name,
               (array_agg(l.client_addr ORDER BY l.load_date DESC))[1] AS client_addr,
               (array_agg(l.database_name ORDER BY l.load_date DESC))[1] AS database_name,
               (array_agg(l.session_state ORDER BY l.load_date DESC))[1] AS session_state,
               (array_agg(l.query ORDER BY l.load_date DESC))[1] AS query, max(l.load_date) AS recorded_at,
               jsonb_agg(jsonb_build_object(
                   'lock_type', l.lock_type, 'lock_mode', l.lock_mode, 'granted', l.lock_granted, 'database_oid', l.database_oid::bigint,
                   'lock_target_key', l.lock_target_key, 'database_name', l.database_name, 'relation_name', l.relation_name,
                   'lock_target', l.lock_target, 'wait_start', l.wait_start, 'lock_since', l.lock_since,
                   'blocked_by_pids', l.blocked_by_pids, 'block_kind', l.block_kind) ORDER BY l.lock_granted DESC, l.lock_target, l.lock_mode) AS locks
        FROM l WHERE l.hk = w.hk) la ON true
    ORDER BY w.pid NULLS LAST, w.gid;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.blocking_at(timestamptz, text) IS
    'The blocking forest as recorded at a past moment (lockvault blocking --at): one row per session or prepared transaction that waited, blocked or was waited for, with its waiting lock, its blocker state and every lock of it then current (locks). p_cluster: cluster_name or system_identifier, needed when the vault holds several. Refuses a moment before the retained history, in the future (22023) or while lockvault was not watching (P0002).';
REVOKE ALL ON FUNCTION lock_monitoring.blocking_at(timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lock_monitoring.blocking_at(timestamptz, text) TO lock_monitoring_role, lock_writer_role;
