-- Migration 025: the cycle summary (monitor_cycle_s) carries the cycle's blockers by severity,
-- so fleet_status (sql/functions/fleet_status.sql) reads them from the current summary rows
-- instead of from every partition of blocking_session_s. The daemon counts the blocker rows it
-- writes (critical_blockers is counted the same way from then on), and a change of the counts
-- is a change of the summary: a blocker that goes from LOW to HIGH writes a summary row.
-- Rows written before this migration, or by a lockvault that does not send them, have NULL:
-- fleet_status counts those clusters' blockers from blocking_session_s, as before.

ALTER TABLE lock_monitoring.monitor_cycle_s ADD COLUMN IF NOT EXISTS high_blockers integer;
ALTER TABLE lock_monitoring.monitor_cycle_s ADD COLUMN IF NOT EXISTS medium_blockers integer;
ALTER TABLE lock_monitoring.monitor_cycle_s ADD COLUMN IF NOT EXISTS low_blockers integer;
COMMENT ON COLUMN lock_monitoring.monitor_cycle_s.high_blockers IS
    'Blocker rows (blocking_session_s) the cycle wrote or kept at HIGH severity; NULL for rows written before lockvault counted them by severity (then critical_blockers counted its assessments).';
COMMENT ON COLUMN lock_monitoring.monitor_cycle_s.medium_blockers IS 'Blocker rows of the cycle at MEDIUM severity; NULL as for high_blockers.';
COMMENT ON COLUMN lock_monitoring.monitor_cycle_s.low_blockers IS 'Blocker rows of the cycle at LOW severity; NULL as for high_blockers.';
COMMENT ON COLUMN lock_monitoring.monitor_cycle_s.critical_blockers IS
    'Blockers at CRITICAL severity in the cycle: its blocker rows when high_blockers is set, else (older rows) its assessments.';
