-- Migration 010: indexes for the dashboards (current rows), the daemon's per-cycle lookups
-- (current rows of one cluster), analysis (waits by time) and retention (closed rows by age).

-- Current rows: every dashboard and every record_cycle end-dating step reads only these.
CREATE INDEX IF NOT EXISTS lock_activity_s_current ON lock_monitoring.lock_activity_s (lock_activity_hk) WHERE load_end_date IS NULL;
CREATE INDEX IF NOT EXISTS blocking_session_s_current ON lock_monitoring.blocking_session_s (blocking_session_hk) WHERE load_end_date IS NULL;
CREATE INDEX IF NOT EXISTS blocking_session_s_current_severity ON lock_monitoring.blocking_session_s (blocking_severity, blocked_sessions_count DESC) WHERE load_end_date IS NULL;
CREATE INDEX IF NOT EXISTS deadlock_event_s_current_detected ON lock_monitoring.deadlock_event_s (detected_at DESC) WHERE load_end_date IS NULL;
CREATE INDEX IF NOT EXISTS lock_wait_analysis_s_current ON lock_monitoring.lock_wait_analysis_s (lock_wait_analysis_hk) WHERE load_end_date IS NULL;
CREATE INDEX IF NOT EXISTS deadlock_involvement_s_current ON lock_monitoring.deadlock_involvement_s (deadlock_involvement_hk) WHERE load_end_date IS NULL;
-- Hubs by cluster: record_cycle scopes end-dating to one cluster.
CREATE INDEX IF NOT EXISTS lock_activity_h_cluster ON lock_monitoring.lock_activity_h (system_identifier);
CREATE INDEX IF NOT EXISTS blocking_session_h_cluster ON lock_monitoring.blocking_session_h (system_identifier, session_pid);
-- Analysis: waits by time; retention: closed rows by age.
CREATE INDEX IF NOT EXISTS lock_activity_s_waits ON lock_monitoring.lock_activity_s (wait_start) WHERE NOT lock_granted;
CREATE INDEX IF NOT EXISTS lock_activity_s_closed ON lock_monitoring.lock_activity_s (load_end_date) WHERE load_end_date IS NOT NULL;
CREATE INDEX IF NOT EXISTS blocking_session_s_closed ON lock_monitoring.blocking_session_s (load_end_date) WHERE load_end_date IS NOT NULL;
-- Links by the hubs they join (lookups from either side, and retention's NOT EXISTS checks).
CREATE INDEX IF NOT EXISTS lock_blocking_l_lock ON lock_monitoring.lock_blocking_l (lock_activity_hk);
CREATE INDEX IF NOT EXISTS lock_blocking_l_blocker ON lock_monitoring.lock_blocking_l (blocking_session_hk);
CREATE INDEX IF NOT EXISTS lock_blocking_l_blocked ON lock_monitoring.lock_blocking_l (blocked_session_hk);
CREATE INDEX IF NOT EXISTS deadlock_involvement_l_event ON lock_monitoring.deadlock_involvement_l (deadlock_event_hk);
CREATE INDEX IF NOT EXISTS deadlock_involvement_l_session ON lock_monitoring.deadlock_involvement_l (blocking_session_hk);
-- Last resolve decision per blocker (blocking dashboard).
CREATE INDEX IF NOT EXISTS resolve_decision_s_latest ON lock_monitoring.resolve_decision_s (blocking_session_hk, load_date DESC);
-- Current cycle summary per cluster (lockvault status).
CREATE INDEX IF NOT EXISTS monitor_cycle_s_current ON lock_monitoring.monitor_cycle_s (cluster_hk) WHERE load_end_date IS NULL;
