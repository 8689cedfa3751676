-- Migration 013: auto_kill_eligible comes from the resolver's own rule, with its reason.
--
-- lockvault writes the resolver's answer for every blocker (ResolvePolicy.decide, the rule
-- `lockvault resolve` and the daemon act on) and the reason beside it
-- (sql/functions/record_blockers.sql; the dashboard: sql/views/blocking_sessions_dashboard.sql),
-- so the dashboard cannot disagree with the resolver: a second copy of the kill rule in SQL
-- would miss resolve.min_severity, root-ness and the exclusions.
-- Rows written before this migration keep their old value and a NULL reason.

ALTER TABLE lock_monitoring.blocking_session_s ADD COLUMN IF NOT EXISTS auto_kill_reason text;
COMMENT ON COLUMN lock_monitoring.blocking_session_s.auto_kill_eligible IS
    'The resolver''s decision as of load_date: true when it ends this blocker (in a dry run: would). Same rule as lockvault resolve.';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.auto_kill_reason IS
    'Why it is or is not eligible (e.g. "excluded role (etl)", "below resolve.min_severity (CRITICAL)"); NULL for rows written before lockvault recorded it.';
GRANT UPDATE (auto_kill_reason) ON lock_monitoring.blocking_session_s TO lock_writer_role;
