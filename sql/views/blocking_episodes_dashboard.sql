-- The morning after: every blocking episode, newest first, one row each (migration 035;
-- episode_story() tells one in full, top_blockers() groups them by job). While an episode is
-- open the vault holds its start (change-only writes): its numbers are then as of its first
-- cycle, its waiting_sessions counts those that joined so far, and its duration runs to its
-- cluster's last recorded cycle.

-- Created once the tables exist (migration 035): `lockvault migrate` applies every numbered
-- migration before this set, so only a vault built with today's functions over an older schema
-- (the upgrade tests') lacks them; the set runs again after 035.
DO $episodes$
BEGIN
    IF to_regclass('lock_monitoring.blocking_episode_h') IS NULL THEN
        RETURN;
    END IF;
    CREATE OR REPLACE VIEW lock_monitoring.blocking_episodes_dashboard AS
    WITH cur AS (
        SELECT DISTINCT ON (c.cluster_hk) c.cluster_hk, c.cluster_name, c.last_cycle_at
        FROM lock_monitoring.monitor_cycle_s c WHERE c.load_end_date IS NULL ORDER BY c.cluster_hk, c.last_cycle_at DESC
    )
    SELECT h.episode_id,
           coalesce(nullif(cur.cluster_name, ''), '-') AS cluster_name,
           h.started_at,
           en.ended_at,
           extract(epoch FROM coalesce(en.ended_at, greatest(h.started_at, least(cur.last_cycle_at, now()))) - h.started_at)::double precision
               AS duration_seconds,
           coalesce(st.root_pid, en.root_pid) AS root_pid,
           coalesce(st.root_user_name, en.root_user_name) AS root_user_name,
           coalesce(st.root_application_name, en.root_application_name) AS root_application_name,
           coalesce(st.root_state, en.root_state) AS root_state,
           left(regexp_replace(coalesce(st.root_query, en.root_query, 'prepared transaction ''' || coalesce(st.root_gid, en.root_gid) || ''''), '\s+', ' ', 'g'), 200)
               AS root_query,
           coalesce(en.waiting_sessions,
                    (SELECT count(*)::integer FROM lock_monitoring.blocking_episode_session_l l WHERE l.episode_hk = h.episode_hk AND l.role = 'waiter'))
               AS waiting_sessions,
           coalesce(en.peak_waiting, st.peak_waiting) AS peak_waiting,
           coalesce(en.wait_seconds_total, st.wait_seconds_total) AS wait_seconds_total,
           coalesce(en.longest_wait_seconds, st.longest_wait_seconds) AS longest_wait_seconds,
           coalesce(en.max_severity, st.max_severity) AS max_severity,
           coalesce(en.lock_targets, st.lock_targets) AS lock_targets,
           en.ended_by
    FROM lock_monitoring.blocking_episode_h h
    LEFT JOIN lock_monitoring.blocking_episode_s st ON st.episode_hk = h.episode_hk AND st.started_at = h.started_at AND st.phase = 'started'
    LEFT JOIN lock_monitoring.blocking_episode_s en ON en.episode_hk = h.episode_hk AND en.started_at = h.started_at AND en.phase = 'ended'
    LEFT JOIN cur ON cur.cluster_hk = h.cluster_hk
    WHERE st.episode_hk IS NOT NULL OR en.episode_hk IS NOT NULL
    ORDER BY h.started_at DESC, h.episode_id;
    COMMENT ON VIEW lock_monitoring.blocking_episodes_dashboard IS
        'Blocking episodes, newest first, one row each: a root blocker''s incident from the first wait behind it until nobody waited behind it — who the root was, how many waited, what it cost and how it ended. episode_story(episode_id) tells one in full.';
    COMMENT ON COLUMN lock_monitoring.blocking_episodes_dashboard.episode_id IS 'The episode''s id (lockvault episode ID; the cleared alert''s episode.id).';
    COMMENT ON COLUMN lock_monitoring.blocking_episodes_dashboard.cluster_name IS 'The daemon''s cluster_name (config) for the monitored cluster, ''-'' when unset.';
    COMMENT ON COLUMN lock_monitoring.blocking_episodes_dashboard.started_at IS 'When the first wait behind the root began (its waitstart).';
    COMMENT ON COLUMN lock_monitoring.blocking_episodes_dashboard.ended_at IS 'When nobody waited behind the root any more; NULL while the episode is open.';
    COMMENT ON COLUMN lock_monitoring.blocking_episodes_dashboard.duration_seconds IS
        'Seconds from started_at to ended_at, or, while open, to its cluster''s last recorded cycle (up to vault.heartbeat_seconds behind now).';
    COMMENT ON COLUMN lock_monitoring.blocking_episodes_dashboard.root_pid IS 'pid of the root session (NULL for a prepared transaction: root_query names its gid).';
    COMMENT ON COLUMN lock_monitoring.blocking_episodes_dashboard.root_user_name IS 'The root''s role (a prepared transaction''s owner).';
    COMMENT ON COLUMN lock_monitoring.blocking_episodes_dashboard.root_application_name IS 'The root''s application_name: which program to ask.';
    COMMENT ON COLUMN lock_monitoring.blocking_episodes_dashboard.root_state IS 'The root''s state when first seen blocking: active, idle in transaction, …; prepared for a prepared transaction.';
    COMMENT ON COLUMN lock_monitoring.blocking_episodes_dashboard.root_query IS
        'The root''s query when first seen blocking, whitespace folded, first 200 characters (episode_story has it whole).';
    COMMENT ON COLUMN lock_monitoring.blocking_episodes_dashboard.waiting_sessions IS 'Sessions that waited behind the root, directly or through chains (while open: those that joined so far).';
    COMMENT ON COLUMN lock_monitoring.blocking_episodes_dashboard.peak_waiting IS 'Most sessions waiting behind the root at once (while open: in its first cycle).';
    COMMENT ON COLUMN lock_monitoring.blocking_episodes_dashboard.wait_seconds_total IS
        'Session-seconds lost: the sum over waiters of their time waiting within the episode (while open: as of its first cycle).';
    COMMENT ON COLUMN lock_monitoring.blocking_episodes_dashboard.longest_wait_seconds IS 'The longest single wait within the episode, in seconds.';
    COMMENT ON COLUMN lock_monitoring.blocking_episodes_dashboard.max_severity IS 'The highest severity the root or a blocker within the episode reached: LOW, MEDIUM, HIGH or CRITICAL.';
    COMMENT ON COLUMN lock_monitoring.blocking_episodes_dashboard.lock_targets IS 'What the waiters waited for, e.g. {"relation public.orders"}.';
    COMMENT ON COLUMN lock_monitoring.blocking_episodes_dashboard.ended_by IS
        'How it ended: root_finished, root_disconnected, root_cancelled, root_terminated, queue_cancelled, waiters_gave_up, deadlock or unobserved (lockvault was not watching; ended_at is the last moment seen). NULL while open.';

    -- Read-only: SELECT for readers (lock_admin_role through lock_monitoring_role) and the daemon.
    REVOKE ALL ON lock_monitoring.blocking_episodes_dashboard FROM PUBLIC, lock_writer_role;
    GRANT SELECT ON lock_monitoring.blocking_episodes_dashboard TO lock_monitoring_role, lock_writer_role;
END
$episodes$;
