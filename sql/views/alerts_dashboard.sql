-- What DBAs read in psql: current state first, worst first; long text cut so rows stay
-- readable (full text is in the satellites). CREATE OR REPLACE VIEW may only add columns at
-- the end; to drop, rename, retype or move one, drop the view of the old shape first
-- (as sql/views/blocking_sessions_dashboard.sql does).

CREATE OR REPLACE VIEW lock_monitoring.alerts_dashboard AS
SELECT e.event_at,
       e.kind,
       e.severity,
       e.summary,
       h.alert_id,
       coalesce((SELECT string_agg(d.sink || ': ' || d.outcome || CASE WHEN d.attempts > 1 THEN ' after ' || d.attempts || ' attempts' ELSE '' END, ', ' ORDER BY d.sink)
                 FROM lock_monitoring.alert_delivery_s d
                 WHERE d.alert_hk = e.alert_hk AND d.event_at = e.event_at AND d.kind = e.kind), 'no sink configured') AS deliveries
FROM lock_monitoring.alert_event_s e
JOIN lock_monitoring.alert_h h USING (alert_hk)
ORDER BY e.event_at DESC;
COMMENT ON VIEW lock_monitoring.alerts_dashboard IS
    'Alerts lockvault sent, newest first, with each sink''s outcome: the answer to "were we paged?".';
COMMENT ON COLUMN lock_monitoring.alerts_dashboard.deliveries IS 'Per sink: delivered / failed / dropped (with attempts when retried).';
COMMENT ON COLUMN lock_monitoring.alerts_dashboard.event_at IS
    'When lockvault saw the change this alert reports (the sample time), newest first.';
COMMENT ON COLUMN lock_monitoring.alerts_dashboard.kind IS
    'raised (a blocker first reached alerts.min_severity), escalated (it reached a higher severity), cleared (it stopped blocking, or fell below, for alerts.clear_after_seconds) or deadlock.';
COMMENT ON COLUMN lock_monitoring.alerts_dashboard.severity IS
    'LOW / MEDIUM / HIGH / CRITICAL: the severity the alert was sent with (the blocker''s at event_at).';
COMMENT ON COLUMN lock_monitoring.alerts_dashboard.summary IS
    'The one-line text every sink received, as a pager shows it.';
COMMENT ON COLUMN lock_monitoring.alerts_dashboard.alert_id IS
    'Stable id of the incident, the same in every alert about it: deduplicate pages on it; alert_h and alert_event_s hold the full payload.';

-- Read-only: SELECT for readers (lock_admin_role through lock_monitoring_role) and the daemon.
REVOKE ALL ON lock_monitoring.alerts_dashboard FROM PUBLIC, lock_writer_role;
GRANT SELECT ON lock_monitoring.alerts_dashboard TO lock_monitoring_role, lock_writer_role;
