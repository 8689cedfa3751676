-- Migration 014: the history dashboards page from an index instead of sorting everything.
--
-- lock_wait_analysis_dashboard is ordered by period, newest first: with this index its first
-- page (and a 24-hour window) reads the newest periods only, however long the history.
-- deadlock_events_dashboard already has deadlock_event_s_current_detected (migration 010).
CREATE INDEX IF NOT EXISTS lock_wait_analysis_h_period ON lock_monitoring.lock_wait_analysis_h (period_start DESC);
COMMENT ON INDEX lock_monitoring.lock_wait_analysis_h_period IS
    'lock_wait_analysis_dashboard: newest periods first (its first page and time windows read only those).';
