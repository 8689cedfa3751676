-- Migration 008: what DBAs read in psql. Current state first, worst first; long text cut so
-- rows stay readable (full text is in the satellites).

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
       s.load_date AS recorded_at
FROM lock_monitoring.blocking_session_s s
JOIN lock_monitoring.blocking_session_h h USING (blocking_session_hk)
LEFT JOIN LATERAL (
    SELECT r.decision, r.reason FROM lock_monitoring.resolve_decision_s r
    WHERE r.blocking_session_hk = s.blocking_session_hk ORDER BY r.load_date DESC LIMIT 1) d ON true
WHERE s.load_end_date IS NULL
ORDER BY CASE s.blocking_severity WHEN 'CRITICAL' THEN 1 WHEN 'HIGH' THEN 2 WHEN 'MEDIUM' THEN 3 ELSE 4 END,
         s.blocked_sessions_count DESC, s.blocking_started, s.session_pid;
COMMENT ON VIEW lock_monitoring.blocking_sessions_dashboard IS 'Sessions blocking others right now, worst first, with the last resolve decision.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.session_pid IS 'pid of the blocking session (NULL: a prepared transaction, see prepared_gid).';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.blocking_severity IS 'LOW / MEDIUM / HIGH / CRITICAL as of the last change.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.blocked_sessions_count IS 'Sessions held up, directly or through chains.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.blocking_duration_seconds IS 'Seconds since the longest wait in its tree began (live).';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.recommended_action IS 'What to do about it.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.auto_kill_eligible IS 'Whether the resolver could end it (before config exclusions).';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.kill_threshold_seconds IS 'Blocking time after which the resolver may act.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.is_superuser IS 'Superuser sessions are never ended unless resolve.allow_superuser.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.last_decision IS 'Last resolve decision about it (would_terminate, terminated, skipped, …), NULL if none.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.query IS 'Its query text, whitespace folded, first 60 characters.';

CREATE OR REPLACE VIEW lock_monitoring.lock_activity_dashboard AS
SELECT s.session_pid,
       s.lock_granted AS granted,
       s.lock_mode,
       s.lock_type,
       s.lock_target,
       s.relation_name,
       s.database_name,
       round(extract(epoch FROM (coalesce(s.load_end_date, now()) - s.lock_since))::numeric, 1)::double precision AS lock_duration_seconds,
       s.blocking_pid,
       s.user_name,
       s.application_name,
       s.session_state,
       s.advisory_key,
       h.prepared_gid,
       left(regexp_replace(s.query, '\s+', ' ', 'g'), 60) AS query,
       h.system_identifier,
       s.load_date AS recorded_at
FROM lock_monitoring.lock_activity_s s
JOIN lock_monitoring.lock_activity_h h USING (lock_activity_hk)
WHERE s.load_end_date IS NULL
ORDER BY s.lock_granted, s.lock_since, s.session_pid;
COMMENT ON VIEW lock_monitoring.lock_activity_dashboard IS 'Locks captured right now: waiting ones first, oldest first.';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.granted IS 'false = waiting for the lock.';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.lock_duration_seconds IS 'Seconds waiting (or held, since lockvault saw it / the transaction began).';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.blocking_pid IS 'For a waiting lock: who it waits for (0 = prepared transaction).';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.advisory_key IS 'Advisory lock key as the application passed it.';

CREATE OR REPLACE VIEW lock_monitoring.lock_wait_analysis_dashboard AS
SELECT h.period_start,
       h.period_end,
       h.database_name,
       h.lock_target,
       h.lock_mode,
       s.wait_count,
       round(s.avg_wait_seconds::numeric, 2)::double precision AS avg_wait_s,
       round(s.p95_wait_seconds::numeric, 2)::double precision AS p95_wait_s,
       round(s.max_wait_seconds::numeric, 2)::double precision AS max_wait_s,
       s.top_blockers,
       s.recommendation,
       h.system_identifier
FROM lock_monitoring.lock_wait_analysis_s s
JOIN lock_monitoring.lock_wait_analysis_h h USING (lock_wait_analysis_hk)
WHERE s.load_end_date IS NULL
ORDER BY h.period_start DESC, s.total_wait_seconds DESC;
COMMENT ON VIEW lock_monitoring.lock_wait_analysis_dashboard IS 'Where time went waiting for locks, per period (newest first) and target (most total wait first). Filled by analyze_lock_waits().';

CREATE OR REPLACE VIEW lock_monitoring.deadlock_events_dashboard AS
SELECT s.detected_at,
       s.database_name,
       s.participant_count,
       s.participant_pids,
       s.victim_pid,
       array_to_string(s.sources, ',') AS sources,
       left(regexp_replace(s.details, '\s+', ' ', 'g'), 100) AS details,
       h.system_identifier,
       h.event_key
FROM lock_monitoring.deadlock_event_s s
JOIN lock_monitoring.deadlock_event_h h USING (deadlock_event_hk)
WHERE s.load_end_date IS NULL
ORDER BY s.detected_at DESC;
COMMENT ON VIEW lock_monitoring.deadlock_events_dashboard IS 'Deadlocks, newest first; one row per deadlock however many sources saw it.';
COMMENT ON COLUMN lock_monitoring.deadlock_events_dashboard.sources IS 'counter / graph / server_log: who saw it.';
COMMENT ON COLUMN lock_monitoring.deadlock_events_dashboard.victim_pid IS 'Session PostgreSQL cancelled to break it, when the server log was read.';
