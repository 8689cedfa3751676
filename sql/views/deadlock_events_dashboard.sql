-- What DBAs read in psql: current state first, worst first; long text cut so rows stay
-- readable (full text is in the satellites). CREATE OR REPLACE VIEW may only add columns at
-- the end; to drop, rename, retype or move one, drop the view of the old shape first
-- (as sql/views/blocking_sessions_dashboard.sql does).

CREATE OR REPLACE VIEW lock_monitoring.deadlock_events_dashboard AS
SELECT s.detected_at,
       s.database_name,
       s.participant_count,
       s.participant_pids,
       s.victim_pid,
       array_to_string(s.sources, ',') AS sources,
       -- Line breaks as spaces, no regexp: this view is read whole over months of deadlocks,
       -- and a regexp per row was most of its cost (docs/benchmarks.md, part 5).
       translate(left(s.details, 100), E'\n\r\t', '   ') AS details,
       h.system_identifier,
       h.event_key
FROM lock_monitoring.deadlock_event_s s
JOIN lock_monitoring.deadlock_event_h h USING (deadlock_event_hk)
WHERE s.load_end_date IS NULL
ORDER BY s.detected_at DESC;
COMMENT ON VIEW lock_monitoring.deadlock_events_dashboard IS 'Deadlocks, newest first; one row per deadlock however many sources saw it.';
COMMENT ON COLUMN lock_monitoring.deadlock_events_dashboard.sources IS 'counter / graph / server_log: who saw it.';
COMMENT ON COLUMN lock_monitoring.deadlock_events_dashboard.details IS 'What each participant waited for (first 100 characters, line breaks shown as spaces; full text in deadlock_event_s.details).';
COMMENT ON COLUMN lock_monitoring.deadlock_events_dashboard.victim_pid IS 'Session PostgreSQL cancelled to break it, when the server log was read.';
COMMENT ON COLUMN lock_monitoring.deadlock_events_dashboard.detected_at IS
    'When it was detected: the server log''s time when the log was read, else the sample that saw it.';
COMMENT ON COLUMN lock_monitoring.deadlock_events_dashboard.database_name IS
    'Database the deadlock happened in.';
COMMENT ON COLUMN lock_monitoring.deadlock_events_dashboard.participant_count IS
    'Sessions in the cycle (0 when only pg_stat_database.deadlocks counted it).';
COMMENT ON COLUMN lock_monitoring.deadlock_events_dashboard.participant_pids IS
    'pids of the sessions in the cycle, when known.';
COMMENT ON COLUMN lock_monitoring.deadlock_events_dashboard.system_identifier IS
    'pg_control_system().system_identifier of the monitored cluster: tells the clusters of a fleet apart.';
COMMENT ON COLUMN lock_monitoring.deadlock_events_dashboard.event_key IS
    'lockvault''s identifier of the event within cluster and database (deadlock_event_h).';

-- Read-only: SELECT for readers (lock_admin_role through lock_monitoring_role) and the daemon.
REVOKE ALL ON lock_monitoring.deadlock_events_dashboard FROM PUBLIC, lock_writer_role;
GRANT SELECT ON lock_monitoring.deadlock_events_dashboard TO lock_monitoring_role, lock_writer_role;
