-- Blocking episodes (migration 035): the `episodes` part of a cycle document, written by
-- record_cycle with the rest of the cycle — buffered, spooled and replayed like it.
-- Part: {started: [row], joined: [{episode_id, started_at, blocking_session, first_wait_at}], ended: [row]}.
-- Row: {episode_id, started_at, root_session: {session key}, waiter_sessions: [{blocking_session, first_wait_at}],
--       <blocking_episode_s columns>} (waiters and decisions only when ended). The sessions they
-- name are in the document's sessions part (their hubs are written first).
--
-- Change-only and idempotent, keyed by what each row is:
-- - the hub by the episode id; a started row only with a hub new in this call, so a restarted
--   daemon that finds an open episode again (the same id) or a replayed document adds nothing;
-- - links by (episode, session, role);
-- - the ended row by (episode, its start, 'ended'). Its start is the hub's (the first one
--   recorded wins), so both rows share a partition. It is merged with the started row, if any:
--   the root as first seen stays there; peak, severity, depth, targets and queued request are
--   the greater of both; a session the vault knows joined (a link) but this document's process
--   never saw (a restart in the middle) is listed with an unknown end (lastWaitAt and
--   waitedSeconds null).
-- Timestamps inside waiters and decisions are stored as to_jsonb(timestamptz) renders them.

CREATE OR REPLACE FUNCTION lock_monitoring.severity_max(a text, b text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT (ARRAY['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'])[greatest(coalesce(array_position(ARRAY['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], a), 1),
                                                              coalesce(array_position(ARRAY['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'], b), 1))]
$fn$;
COMMENT ON FUNCTION lock_monitoring.severity_max(text, text) IS 'The higher of two severities (LOW < MEDIUM < HIGH < CRITICAL; NULL counts as LOW).';

CREATE OR REPLACE FUNCTION lock_monitoring.record_episodes(p_sysid text, p_src text, p_at timestamptz, p jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_new bytea[];
    v_started integer;
    v_ended integer;
BEGIN
    WITH h AS (
        INSERT INTO blocking_episode_h (episode_hk, episode_id, cluster_hk, started_at, load_date, record_source)
        SELECT DISTINCT ON (hash_key(e.j->>'episode_id')) hash_key(e.j->>'episode_id'), e.j->>'episode_id', cluster_hk(p_sysid),
               (e.j->>'started_at')::timestamptz, p_at, p_src
        FROM (SELECT j FROM jsonb_array_elements(coalesce(p->'started', '[]')) j
              UNION ALL SELECT j FROM jsonb_array_elements(coalesce(p->'joined', '[]')) j
              UNION ALL SELECT j FROM jsonb_array_elements(coalesce(p->'ended', '[]')) j) e
        ORDER BY hash_key(e.j->>'episode_id'), (e.j->>'started_at')::timestamptz
        ON CONFLICT DO NOTHING
        RETURNING episode_hk)
    SELECT coalesce(array_agg(episode_hk), '{}') INTO v_new FROM h;

    INSERT INTO blocking_episode_s (episode_hk, started_at, phase, load_date, record_source, root_pid, root_backend_start, root_gid,
                                    root_user_name, root_application_name, root_client_addr, root_database_name, root_state, root_xact_start,
                                    root_query, root_query_id, waiting_sessions, peak_waiting, peak_at, wait_seconds_total, longest_wait_seconds,
                                    max_severity, deepest_chain, lock_targets, queued_request)
    SELECT hk, r.started_at, 'started', p_at, p_src, r.root_pid, r.root_backend_start, r.root_gid, r.root_user_name, r.root_application_name,
           r.root_client_addr, r.root_database_name, r.root_state, r.root_xact_start, r.root_query, r.root_query_id, r.waiting_sessions,
           r.peak_waiting, r.peak_at, r.wait_seconds_total, r.longest_wait_seconds, r.max_severity, r.deepest_chain, r.lock_targets, r.queued_request
    FROM jsonb_array_elements(coalesce(p->'started', '[]')) AS e(j)
    CROSS JOIN LATERAL hash_key(e.j->>'episode_id') AS hk
    CROSS JOIN LATERAL jsonb_populate_record(NULL::blocking_episode_s, e.j) AS r
    WHERE hk = ANY (v_new)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_started = ROW_COUNT;

    INSERT INTO blocking_episode_s (episode_hk, started_at, phase, load_date, record_source, ended_at, ended_by, root_pid, root_backend_start,
                                    root_gid, root_user_name, root_application_name, root_client_addr, root_database_name, root_state,
                                    root_xact_start, root_query, root_query_id, waiting_sessions, peak_waiting, peak_at, wait_seconds_total,
                                    longest_wait_seconds, max_severity, deepest_chain, lock_targets, queued_request, waiters, decisions)
    SELECT h.episode_hk, h.started_at, 'ended', p_at, p_src, r.ended_at, r.ended_by,
           CASE WHEN st.episode_hk IS NULL THEN r.root_pid END, CASE WHEN st.episode_hk IS NULL THEN r.root_backend_start END,
           CASE WHEN st.episode_hk IS NULL THEN r.root_gid END, CASE WHEN st.episode_hk IS NULL THEN r.root_user_name END,
           CASE WHEN st.episode_hk IS NULL THEN r.root_application_name END, CASE WHEN st.episode_hk IS NULL THEN r.root_client_addr END,
           CASE WHEN st.episode_hk IS NULL THEN r.root_database_name END, CASE WHEN st.episode_hk IS NULL THEN r.root_state END,
           CASE WHEN st.episode_hk IS NULL THEN r.root_xact_start END, CASE WHEN st.episode_hk IS NULL THEN r.root_query END,
           CASE WHEN st.episode_hk IS NULL THEN r.root_query_id END,
           jsonb_array_length(w.waiters), greatest(r.peak_waiting, st.peak_waiting),
           CASE WHEN st.peak_waiting > r.peak_waiting THEN st.peak_at ELSE r.peak_at END,
           r.wait_seconds_total, greatest(r.longest_wait_seconds, st.longest_wait_seconds), severity_max(r.max_severity, st.max_severity),
           greatest(r.deepest_chain, st.deepest_chain),
           ARRAY(SELECT DISTINCT t FROM unnest(r.lock_targets || coalesce(st.lock_targets, '{}')) t ORDER BY t),
           r.queued_request OR coalesce(st.queued_request, false), w.waiters, d.decisions
    FROM jsonb_array_elements(coalesce(p->'ended', '[]')) AS e(j)
    JOIN blocking_episode_h h ON h.episode_hk = hash_key(e.j->>'episode_id')
    CROSS JOIN LATERAL jsonb_populate_record(NULL::blocking_episode_s, e.j) AS r
    LEFT JOIN blocking_episode_s st ON st.episode_hk = h.episode_hk AND st.started_at = h.started_at AND st.phase = 'started'
    CROSS JOIN LATERAL (
        SELECT coalesce(jsonb_agg(x.w ORDER BY x.ord), '[]') AS waiters FROM (
            SELECT o.ord, o.w || jsonb_build_object('backendStart', to_jsonb((o.w->>'backendStart')::timestamptz),
                                                    'firstWaitAt', to_jsonb((o.w->>'firstWaitAt')::timestamptz),
                                                    'lastWaitAt', to_jsonb((o.w->>'lastWaitAt')::timestamptz)) AS w
            FROM jsonb_array_elements(coalesce(e.j->'waiters', '[]')) WITH ORDINALITY AS o(w, ord)
            UNION ALL
            -- Joined before this process knew the episode (a restart in the middle): its end is unknown.
            SELECT 1000000 + row_number() OVER (ORDER BY l.load_date, sh.session_pid),
                   jsonb_build_object('pid', sh.session_pid, 'backendStart', to_jsonb(sh.session_start), 'user', NULL, 'application', NULL,
                                      'firstWaitAt', to_jsonb(l.load_date), 'lastWaitAt', NULL, 'waitedSeconds', NULL, 'blockedBy', '[]'::jsonb,
                                      'lockTarget', NULL, 'mode', NULL, 'query', NULL)
            FROM blocking_episode_session_l l JOIN blocking_session_h sh USING (blocking_session_hk)
            WHERE l.episode_hk = h.episode_hk AND l.role = 'waiter'
              AND l.blocking_session_hk NOT IN (SELECT session_hk(p_sysid, s.j->'blocking_session')
                                                FROM jsonb_array_elements(coalesce(e.j->'waiter_sessions', '[]')) AS s(j))) x) w
    CROSS JOIN LATERAL (
        SELECT jsonb_agg(o.d || jsonb_build_object('at', to_jsonb((o.d->>'at')::timestamptz)) ORDER BY o.ord) AS decisions
        FROM jsonb_array_elements(coalesce(e.j->'decisions', '[]')) WITH ORDINALITY AS o(d, ord)) d
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_ended = ROW_COUNT;

    -- Links: the root at the start, each waiter from its first wait.
    INSERT INTO blocking_episode_session_l (episode_hk, blocking_session_hk, role, load_date, record_source)
    SELECT DISTINCT ON (x.hk, x.shk, x.role) x.hk, x.shk, x.role, x.at, p_src
    FROM (
        SELECT hash_key(e.j->>'episode_id') AS hk, session_hk(p_sysid, e.j->'root_session') AS shk, 'root' AS role,
               (e.j->>'started_at')::timestamptz AS at
        FROM (SELECT j FROM jsonb_array_elements(coalesce(p->'started', '[]')) j
              UNION ALL SELECT j FROM jsonb_array_elements(coalesce(p->'ended', '[]')) j) e
        WHERE e.j->'root_session' IS NOT NULL
        UNION ALL
        SELECT hash_key(e.j->>'episode_id'), session_hk(p_sysid, s.j->'blocking_session'), 'waiter', (s.j->>'first_wait_at')::timestamptz
        FROM (SELECT j FROM jsonb_array_elements(coalesce(p->'started', '[]')) j
              UNION ALL SELECT j FROM jsonb_array_elements(coalesce(p->'ended', '[]')) j) e
        CROSS JOIN LATERAL jsonb_array_elements(coalesce(e.j->'waiter_sessions', '[]')) AS s(j)
        UNION ALL
        SELECT hash_key(j->>'episode_id'), session_hk(p_sysid, j->'blocking_session'), 'waiter', (j->>'first_wait_at')::timestamptz
        FROM jsonb_array_elements(coalesce(p->'joined', '[]')) j) x
    ORDER BY x.hk, x.shk, x.role, x.at
    ON CONFLICT DO NOTHING;

    RETURN jsonb_build_object('episodes_started', v_started, 'episodes_ended', v_ended);
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.record_episodes(text, text, timestamptz, jsonb) IS
    'record_cycle part: blocking episodes (blocking_episode_h, blocking_episode_s, blocking_episode_session_l), change-only — a hub and a row when one starts, a link when a session joins, a row when it ends; idempotent. Returns episode rows added.';
GRANT EXECUTE ON FUNCTION lock_monitoring.record_episodes(text, text, timestamptz, jsonb) TO lock_writer_role;

-- What a restarted daemon asks once, before its first cycle is recorded: the episodes the vault
-- holds open for its cluster (a started row and no ended row), with the root's identity and
-- transaction, so an episode in the middle of a restart goes on under its id (EpisodeTracker.adopt).
CREATE OR REPLACE FUNCTION lock_monitoring.open_episodes(p_system_identifier text)
RETURNS TABLE (episode_id text, started_at timestamptz, root_pid integer, root_backend_start timestamptz, root_gid text,
               root_xact_start timestamptz, last_seen_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, lock_monitoring
AS $fn$
    SELECT h.episode_id, h.started_at, s.root_pid, s.root_backend_start, s.root_gid, s.root_xact_start,
           greatest(h.started_at, (SELECT max(c.last_cycle_at) FROM monitor_cycle_s c WHERE c.cluster_hk = h.cluster_hk AND c.load_end_date IS NULL))
    FROM blocking_episode_h h
    JOIN blocking_episode_s s ON s.episode_hk = h.episode_hk AND s.started_at = h.started_at AND s.phase = 'started'
    WHERE h.cluster_hk = cluster_hk(p_system_identifier)
      AND NOT EXISTS (SELECT 1 FROM blocking_episode_s x WHERE x.episode_hk = h.episode_hk AND x.started_at = h.started_at AND x.phase = 'ended')
    ORDER BY h.started_at
$fn$;
COMMENT ON FUNCTION lock_monitoring.open_episodes(text) IS
    'The blocking episodes the vault holds open for a cluster (started, not ended), with the root''s identity and transaction and the cluster''s last recorded cycle: what a restarted daemon continues or ends as unobserved.';
REVOKE ALL ON FUNCTION lock_monitoring.open_episodes(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lock_monitoring.open_episodes(text) TO lock_writer_role, lock_monitoring_role;
