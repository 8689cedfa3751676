-- The story of one blocking episode, as one JSON document (what `lockvault episode ID` tells
-- and draws): when it started and ended and how, the gaps lockvault did not observe inside it,
-- its root as first seen, every waiter (from when to when, behind whom, hard or soft, on what),
-- what it cost, and the resolver's decisions. Keys are camelCase; timestamps ISO 8601 text
-- (to_json of timestamptz); unknown values null. NULL when there is no such episode.
--
-- While an episode is open the vault holds its start (change-only writes): its waiters are then
-- the sessions that joined it (when they began to wait; the rest comes with its end), its
-- numbers are as of its first cycle, and its duration runs to its cluster's last recorded cycle.

CREATE OR REPLACE FUNCTION lock_monitoring.episode_story(p_episode_id text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, lock_monitoring
AS $fn$
    WITH h AS (
        SELECT h.*, c.cluster_name, c.last_cycle_at
        FROM blocking_episode_h h
        LEFT JOIN LATERAL (SELECT c.cluster_name, c.last_cycle_at FROM monitor_cycle_s c WHERE c.cluster_hk = h.cluster_hk AND c.load_end_date IS NULL
                           ORDER BY c.last_cycle_at DESC LIMIT 1) c ON true
        WHERE h.episode_hk = hash_key(p_episode_id)
    ),
    st AS (SELECT s.* FROM blocking_episode_s s JOIN h USING (episode_hk) WHERE s.started_at = h.started_at AND s.phase = 'started'),
    en AS (SELECT s.* FROM blocking_episode_s s JOIN h USING (episode_hk) WHERE s.started_at = h.started_at AND s.phase = 'ended'),
    e AS (
        SELECT h.episode_id, h.cluster_hk, h.cluster_name, h.started_at, en.ended_at, en.ended_by, en.waiters, en.decisions,
               coalesce(en.ended_at, greatest(h.started_at, least(h.last_cycle_at, now()))) AS until,
               coalesce(st.root_pid, en.root_pid) AS root_pid, coalesce(st.root_backend_start, en.root_backend_start) AS root_backend_start,
               coalesce(st.root_gid, en.root_gid) AS root_gid, coalesce(st.root_user_name, en.root_user_name) AS root_user_name,
               coalesce(st.root_application_name, en.root_application_name) AS root_application_name,
               coalesce(st.root_client_addr, en.root_client_addr) AS root_client_addr, coalesce(st.root_state, en.root_state) AS root_state,
               coalesce(st.root_xact_start, en.root_xact_start) AS root_xact_start, coalesce(st.root_query, en.root_query) AS root_query,
               coalesce(st.root_query_id, en.root_query_id) AS root_query_id,
               coalesce(en.peak_waiting, st.peak_waiting) AS peak_waiting, coalesce(en.peak_at, st.peak_at) AS peak_at,
               coalesce(en.wait_seconds_total, st.wait_seconds_total) AS wait_seconds_total,
               coalesce(en.longest_wait_seconds, st.longest_wait_seconds) AS longest_wait_seconds,
               coalesce(en.max_severity, st.max_severity) AS max_severity, coalesce(en.deepest_chain, st.deepest_chain) AS deepest_chain,
               coalesce(en.lock_targets, st.lock_targets) AS lock_targets, coalesce(en.queued_request, st.queued_request) AS queued_request,
               h.episode_hk
        FROM h LEFT JOIN st ON true LEFT JOIN en ON true
        WHERE st.episode_hk IS NOT NULL OR en.episode_hk IS NOT NULL
    )
    SELECT jsonb_build_object(
        'id', e.episode_id,
        'cluster', coalesce(nullif(e.cluster_name, ''), '-'),
        'startedAt', to_jsonb(e.started_at),
        'endedAt', to_jsonb(e.ended_at),
        'durationSeconds', extract(epoch FROM e.until - e.started_at)::float8,
        'endedBy', e.ended_by,
        'gaps', (SELECT coalesce(jsonb_agg(jsonb_build_object('from', to_jsonb(g.gap_start), 'to', to_jsonb(g.gap_end)) ORDER BY g.gap_start), '[]')
                 FROM monitor_gap_s g WHERE g.cluster_hk = e.cluster_hk AND g.gap_end > e.started_at AND g.gap_start < e.until),
        'root', jsonb_build_object('pid', e.root_pid, 'backendStart', to_jsonb(e.root_backend_start), 'gid', e.root_gid, 'user', e.root_user_name,
                                   'application', e.root_application_name, 'client', e.root_client_addr, 'state', e.root_state,
                                   'xactStart', to_jsonb(e.root_xact_start), 'query', e.root_query, 'queryId', e.root_query_id::text),
        'waiters', coalesce(e.waiters, (
            SELECT coalesce(jsonb_agg(jsonb_build_object('pid', sh.session_pid, 'backendStart', to_jsonb(sh.session_start), 'user', NULL,
                                                         'application', NULL, 'firstWaitAt', to_jsonb(l.load_date), 'lastWaitAt', NULL,
                                                         'waitedSeconds', NULL, 'blockedBy', '[]'::jsonb, 'lockTarget', NULL, 'mode', NULL,
                                                         'query', NULL) ORDER BY l.load_date, sh.session_pid), '[]')
            FROM blocking_episode_session_l l JOIN blocking_session_h sh USING (blocking_session_hk)
            WHERE l.episode_hk = e.episode_hk AND l.role = 'waiter')),
        'peakWaiting', e.peak_waiting,
        'peakAt', to_jsonb(e.peak_at),
        'waitSecondsTotal', e.wait_seconds_total,
        'longestWaitSeconds', e.longest_wait_seconds,
        'maxSeverity', e.max_severity,
        'deepestChain', e.deepest_chain,
        'lockTargets', to_jsonb(e.lock_targets),
        'queuedRequest', e.queued_request,
        'decisions', coalesce(e.decisions, '[]'))
    FROM e
$fn$;
COMMENT ON FUNCTION lock_monitoring.episode_story(text) IS
    'The story of one blocking episode as JSON (id, cluster, startedAt, endedAt, durationSeconds, endedBy, gaps, root, waiters, peakWaiting, peakAt, waitSecondsTotal, longestWaitSeconds, maxSeverity, deepestChain, lockTargets, queuedRequest, decisions); NULL when there is no such episode. What lockvault episode ID shows and draws.';
REVOKE ALL ON FUNCTION lock_monitoring.episode_story(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lock_monitoring.episode_story(text) TO lock_monitoring_role, lock_writer_role;
