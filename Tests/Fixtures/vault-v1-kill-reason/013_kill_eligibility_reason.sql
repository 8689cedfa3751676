-- Migration 013: auto_kill_eligible comes from the resolver's own rule, with its reason.
--
-- Until now auto_kill_eligible was a second copy of the kill rule (CRITICAL, not superuser, …)
-- that ignored resolve.min_severity, root-ness and the exclusions, so the dashboard could
-- disagree with the resolver. lockvault now writes the resolver's answer for every blocker
-- (ResolvePolicy.decide, the rule `lockvault resolve` and the daemon act on) and the reason
-- beside it. Rows written before this migration keep their old value and a NULL reason.

ALTER TABLE lock_monitoring.blocking_session_s ADD COLUMN IF NOT EXISTS auto_kill_reason text;
COMMENT ON COLUMN lock_monitoring.blocking_session_s.auto_kill_eligible IS
    'The resolver''s decision as of load_date: true when it ends this blocker (in a dry run: would). Same rule as lockvault resolve.';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.auto_kill_reason IS
    'Why it is or is not eligible (e.g. "excluded role (etl)", "below resolve.min_severity (CRITICAL)"); NULL for rows written before lockvault recorded it.';
GRANT UPDATE (auto_kill_reason) ON lock_monitoring.blocking_session_s TO lock_writer_role;

-- record_cycle keeps its body (renamed); the new record_cycle calls it, then stores the reason
-- on the blocker rows it just wrote. The reason is part of the row's hash_diff, so a current
-- row whose hash_diff matches already carries the same reason: only new rows are touched, and
-- replaying a cycle still changes nothing.
ALTER FUNCTION lock_monitoring.record_cycle(jsonb) RENAME TO record_cycle_rows;
COMMENT ON FUNCTION lock_monitoring.record_cycle_rows(jsonb) IS
    'Everything record_cycle writes except auto_kill_reason; call record_cycle instead.';

CREATE OR REPLACE FUNCTION lock_monitoring.record_cycle(p jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
AS $fn$
DECLARE
    v_stats jsonb := record_cycle_rows(p);   -- validates the document
    v_sysid text := p->>'system_identifier';
BEGIN
    UPDATE blocking_session_s s SET auto_kill_reason = x.auto_kill_reason
    FROM jsonb_to_recordset(coalesce(p->'blockers', '[]')) AS x(kind text, pid integer, backend_start timestamptz, gid text, hash_diff text,
         auto_kill_reason text)
    WHERE s.blocking_session_hk = session_hk(v_sysid, x.kind, x.pid, x.backend_start, x.gid)
      AND s.load_end_date IS NULL AND s.hash_diff = decode(x.hash_diff, 'hex')
      AND s.auto_kill_reason IS DISTINCT FROM x.auto_kill_reason;
    RETURN v_stats;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.record_cycle(jsonb) IS
    'Writes one lockvault sampling cycle (idempotent: replaying the same cycle changes nothing). Called by the daemon, one transaction per cycle.';
GRANT EXECUTE ON FUNCTION lock_monitoring.record_cycle(jsonb) TO lock_writer_role;

-- The dashboard shows the reason beside the flag. Recreated (not replaced) to keep the columns
-- in reading order; grants and comments are restored below.
DROP VIEW lock_monitoring.blocking_sessions_dashboard;
CREATE VIEW lock_monitoring.blocking_sessions_dashboard AS
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
       s.load_date AS recorded_at
FROM lock_monitoring.blocking_session_s s
JOIN lock_monitoring.blocking_session_h h USING (blocking_session_hk)
LEFT JOIN LATERAL (
    SELECT r.decision, r.reason FROM lock_monitoring.resolve_decision_s r
    WHERE r.blocking_session_hk = s.blocking_session_hk ORDER BY r.load_date DESC LIMIT 1) d ON true
WHERE s.load_end_date IS NULL
ORDER BY CASE s.blocking_severity WHEN 'CRITICAL' THEN 1 WHEN 'HIGH' THEN 2 WHEN 'MEDIUM' THEN 3 ELSE 4 END,
         s.blocked_sessions_count DESC, s.blocking_started, s.session_pid;
GRANT SELECT ON lock_monitoring.blocking_sessions_dashboard TO lock_monitoring_role, lock_writer_role;
COMMENT ON VIEW lock_monitoring.blocking_sessions_dashboard IS 'Sessions blocking others right now, worst first, with the resolver''s verdict and its last decision.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.session_pid IS 'pid of the blocking session (NULL: a prepared transaction, see prepared_gid).';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.blocking_severity IS 'LOW / MEDIUM / HIGH / CRITICAL as of the last change.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.blocked_sessions_count IS 'Sessions held up, directly or through chains.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.blocking_duration_seconds IS 'Seconds since the longest wait in its tree began (live).';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.recommended_action IS 'What to do about it.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.auto_kill_eligible IS
    'Whether the resolver ends it (in a dry run: would), by the same rule as lockvault resolve: on, severity, root, threshold, protections, exclusions, caps.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.auto_kill_reason IS 'Why it is or is not eligible; NULL for rows recorded before lockvault wrote it.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.kill_threshold_seconds IS 'Blocking time after which the resolver may act.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.is_superuser IS 'Superuser sessions are never ended unless resolve.allow_superuser.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.last_decision IS 'Last resolve decision about it (would_terminate, terminated, skipped, …), NULL if none.';
COMMENT ON COLUMN lock_monitoring.blocking_sessions_dashboard.query IS 'Its query text, whitespace folded, first 60 characters.';
