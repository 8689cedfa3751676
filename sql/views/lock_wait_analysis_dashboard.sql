-- What DBAs read in psql: current state first, worst first; long text cut so rows stay
-- readable (full text is in the satellites). CREATE OR REPLACE VIEW may only add columns at
-- the end; to drop, rename, retype or move one, drop the view of the old shape first
-- (as sql/views/blocking_sessions_dashboard.sql does).

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
       h.system_identifier,
       round(extract(epoch FROM now() - f.last_cycle_at)::numeric, 1)::double precision AS lag_seconds
FROM lock_monitoring.lock_wait_analysis_s s
JOIN lock_monitoring.lock_wait_analysis_h h USING (lock_wait_analysis_hk)
LEFT JOIN (SELECT mh.system_identifier, max(c.last_cycle_at) AS last_cycle_at FROM lock_monitoring.monitor_cycle_s c
           JOIN lock_monitoring.monitored_cluster_h mh USING (cluster_hk) WHERE c.load_end_date IS NULL GROUP BY 1) f
       ON f.system_identifier = h.system_identifier
WHERE s.load_end_date IS NULL
ORDER BY h.period_start DESC, s.total_wait_seconds DESC;
COMMENT ON VIEW lock_monitoring.lock_wait_analysis_dashboard IS 'Where time went waiting for locks, per period (newest first) and target (most total wait first). Filled by analyze_lock_waits().';
COMMENT ON COLUMN lock_monitoring.lock_wait_analysis_dashboard.period_start IS
    'Start of the analysed period (analyze_lock_waits: the previous hour by default).';
COMMENT ON COLUMN lock_monitoring.lock_wait_analysis_dashboard.period_end IS
    'End of the analysed period (exclusive).';
COMMENT ON COLUMN lock_monitoring.lock_wait_analysis_dashboard.database_name IS
    'Database of the lock waited for (empty for cluster-wide targets such as a transaction ID).';
COMMENT ON COLUMN lock_monitoring.lock_wait_analysis_dashboard.lock_target IS
    'What sessions waited for, e.g. "relation public.orders".';
COMMENT ON COLUMN lock_monitoring.lock_wait_analysis_dashboard.lock_mode IS
    'The mode they asked for, e.g. AccessExclusiveLock.';
COMMENT ON COLUMN lock_monitoring.lock_wait_analysis_dashboard.wait_count IS
    'Waits for this target and mode in the period (one per waiting lock seen).';
COMMENT ON COLUMN lock_monitoring.lock_wait_analysis_dashboard.avg_wait_s IS
    'Average wait, in seconds (a wait still running counts up to the period end).';
COMMENT ON COLUMN lock_monitoring.lock_wait_analysis_dashboard.p95_wait_s IS
    '95th percentile wait, in seconds.';
COMMENT ON COLUMN lock_monitoring.lock_wait_analysis_dashboard.max_wait_s IS
    'Longest wait, in seconds.';
COMMENT ON COLUMN lock_monitoring.lock_wait_analysis_dashboard.top_blockers IS
    'Who held them up most often: "user/application" labels, most frequent first.';
COMMENT ON COLUMN lock_monitoring.lock_wait_analysis_dashboard.recommendation IS
    'What to look at, e.g. lock_timeout for DDL, shorter transactions.';
COMMENT ON COLUMN lock_monitoring.lock_wait_analysis_dashboard.system_identifier IS
    'pg_control_system().system_identifier of the monitored cluster: tells the clusters of a fleet apart.';

COMMENT ON COLUMN lock_monitoring.lock_wait_analysis_dashboard.lag_seconds IS
    'How fresh this row is: seconds since the last cycle lockvault recorded for its cluster (monitor_cycle_s), which still saw it so. Up to vault.heartbeat_seconds (60) is normal for a quiet cluster; more means lockvault stopped recording it (stopped, or cannot reach the vault: fleet_dashboard says which) and the row may no longer be true. NULL when no cycle of its cluster is recorded.';

-- Read-only: SELECT for readers (lock_admin_role through lock_monitoring_role) and the daemon.
REVOKE ALL ON lock_monitoring.lock_wait_analysis_dashboard FROM PUBLIC, lock_writer_role;
GRANT SELECT ON lock_monitoring.lock_wait_analysis_dashboard TO lock_monitoring_role, lock_writer_role;
