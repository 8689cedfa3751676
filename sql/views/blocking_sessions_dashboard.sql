-- What DBAs read in psql: current state first, worst first; long text cut so rows stay
-- readable (full text is in the satellites). CREATE OR REPLACE VIEW may only add columns at
-- the end; to drop, rename, retype or move one, drop the view of the old shape first
-- (as sql/views/blocking_sessions_dashboard.sql does).

-- auto_kill_reason sits beside auto_kill_eligible (migration 013): a view of the shape before
-- it is dropped and recreated, once. No CASCADE: a view of yours on it makes migrate fail, by
-- name, rather than vanish.
DO $shape$
BEGIN
    IF to_regclass('lock_monitoring.blocking_sessions_dashboard') IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM pg_attribute
        WHERE attrelid = to_regclass('lock_monitoring.blocking_sessions_dashboard') AND attname = 'auto_kill_reason' AND NOT attisdropped) THEN
        DROP VIEW lock_monitoring.blocking_sessions_dashboard;
    END IF;
END
$shape$;
CREATE OR REPLACE VIEW lock_monitoring.blocking_sessions_dashboard AS
SELECT s.session_pid,
       s.blocking_severity,
       s.blocked_sessions_count,
       round(extract(epoch FROM (coalesce(s.load_end_date, now()) - s.blocking_started))::numeric, 1)::double precision AS blocking_duration_seconds,
       s.session_state,
       s.user_name,
       s.application_name,
       s.database_name,
       s.held_lock_mode,
       s.lock_target,
       s.recommended_action,
       s.auto_kill_eligible,
       s.auto_kill_reason,
       s.kill_threshold_seconds,
       s.is_superuser,
       s.is_root_blocker,
       d.decision AS last_decision,
       d.reason AS last_decision_reason,
       s.prepared_gid,
       h.session_start,
       s.blocked_pids,
       left(regexp_replace(s.query, '\s+', ' ', 'g'), 60) AS query,
       h.system_identifier,
       s.load_date AS recorded_at,
       s.blocks_as,
       s.queued_for_mode,
       round(extract(epoch FROM now() - f.last_cycle_at)::numeric, 1)::double precision AS lag_seconds
FROM lock_monitoring.blocking_session_s s
JOIN lock_monitoring.blocking_session_h h USING (blocking_session_hk)
LEFT JOIN (SELECT mh.system_identifier, max(c.last_cycle_at) AS last_cycle_at FROM lock_monitoring.monitor_cycle_s c
           JOIN lock_monitoring.monitored_cluster_h mh USING (cluster_hk) WHERE c.load_end_date IS NULL GROUP BY 1) f
       ON f.system_identifier = h.system_identifier
LEFT JOIN LATERAL (
    SELECT r.decision, r.reason FROM lock_monitoring.resolve_decision_s r
    WHERE r.blocking_session_hk = s.blocking_session_hk ORDER BY r.load_date DESC LIMIT 1) d ON true
WHERE s.load_end_date IS NULL
ORDER BY CASE s.blocking_severity WHEN 'CRITICAL' THEN 1 WHEN 'HIGH' THEN 2 WHEN 'MEDIUM' THEN 3 ELSE 4 END,
         s.blocked_sessions_count DESC, s.blocking_started, s.session_pid;
COMMENT ON VIEW lock_monitoring.blocking_sessions_dashboard IS 'Sessions blocking others right now, worst first, with the resolver''s verdict and its last decision.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.session_pid IS 'pid of the blocking session (NULL: a prepared transaction, see prepared_gid).';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.blocking_severity IS 'LOW / MEDIUM / HIGH / CRITICAL as of the last change.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.blocked_sessions_count IS 'Sessions held up, directly or through chains.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.blocking_duration_seconds IS 'Seconds since the longest wait in its tree began (live).';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.recommended_action IS 'What to do about it.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.held_lock_mode IS
    'Strongest lock mode it holds on what its waiters want; NULL when it holds none (blocks_as queued).';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.blocks_as IS
    'holder: its waiters wait for a lock it holds; queued: it holds nothing they need and blocks them by its own waiting request ahead of them in the queue (a queued request: cancel its statement and they go on); holder+queued: both. NULL for rows recorded before lockvault told them apart.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.queued_for_mode IS 'The lock mode it waits for itself, when it waits (e.g. an ALTER TABLE queued for AccessExclusiveLock).';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.auto_kill_eligible IS
    'Whether the resolver ends it (in a dry run: would), by the same rule as lockvault resolve: on, severity, root, threshold, protections, exclusions, caps.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.auto_kill_reason IS 'Why it is or is not eligible; NULL for rows recorded before lockvault wrote it.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.kill_threshold_seconds IS 'Blocking time after which the resolver may act.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.is_superuser IS 'Superuser sessions are never ended unless resolve.allow_superuser.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.last_decision IS 'Last resolve decision about it (would_terminate, terminated, skipped, …), NULL if none.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.query IS 'Its query text, whitespace folded, first 60 characters.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.session_state IS
    'pg_stat_activity.state of the blocker when recorded: active, idle in transaction (holding locks while the application does something else), idle in transaction (aborted); prepared for a prepared transaction.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.user_name IS
    'Role of the blocking session (the owner, for a prepared transaction).';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.application_name IS
    'application_name of the blocking session: which program to ask.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.database_name IS
    'Database the blocking session is connected to.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.lock_target IS
    'What its waiters want, e.g. "relation public.orders", "transaction 1234", "advisory key 42".';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.is_root_blocker IS
    'Blocks others and waits for no one: the head of a chain, where acting helps.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.last_decision_reason IS
    'Why the resolver decided last_decision (NULL when it never decided about this blocker).';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.prepared_gid IS
    'For a prepared transaction: its gid (pg_prepared_xacts), for COMMIT PREPARED or ROLLBACK PREPARED; NULL for a session.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.session_start IS
    'pg_stat_activity.backend_start: with session_pid, the session''s identity (a reused pid is another session).';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.blocked_pids IS
    'pids of every session it holds up, directly or through chains.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.system_identifier IS
    'pg_control_system().system_identifier of the monitored cluster: tells the clusters of a fleet apart.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.recorded_at IS
    'When lockvault recorded this state of the blocker (a new row whenever its severity, waiters or verdict change).';

COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.lag_seconds IS
    'How fresh this row is: seconds since the last cycle lockvault recorded for its cluster (monitor_cycle_s), which still saw it so. Up to vault.heartbeat_seconds (60) is normal for a quiet cluster; more means lockvault stopped recording it (stopped, or cannot reach the vault: fleet_dashboard says which) and the row may no longer be true. NULL when no cycle of its cluster is recorded.';

-- Read-only: SELECT for readers (lock_admin_role through lock_monitoring_role) and the daemon.
REVOKE ALL ON lock_monitoring.blocking_sessions_dashboard FROM PUBLIC, lock_writer_role;
GRANT SELECT ON lock_monitoring.blocking_sessions_dashboard TO lock_monitoring_role, lock_writer_role;
