-- Migration 011: privileges. lock_monitoring_role reads; lock_admin_role reads and may resolve
-- (the right to signal sessions itself comes from pg_signal_backend, granted by a superuser:
-- see docs); lock_writer_role is the daemon's.

GRANT USAGE ON SCHEMA lock_monitoring TO lock_monitoring_role, lock_admin_role, lock_writer_role;
GRANT SELECT ON ALL TABLES IN SCHEMA lock_monitoring TO lock_monitoring_role, lock_writer_role;
GRANT lock_monitoring_role TO lock_admin_role;
GRANT INSERT ON ALL TABLES IN SCHEMA lock_monitoring TO lock_writer_role;
GRANT UPDATE (load_end_date) ON lock_monitoring.lock_activity_s, lock_monitoring.blocking_session_s, lock_monitoring.deadlock_event_s,
    lock_monitoring.deadlock_involvement_s, lock_monitoring.lock_wait_analysis_s, lock_monitoring.monitor_cycle_s,
    lock_monitoring.deadlock_counter_s TO lock_writer_role;
GRANT DELETE ON ALL TABLES IN SCHEMA lock_monitoring TO lock_writer_role;   -- cleanup_old_data, run by the daemon
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA lock_monitoring TO lock_writer_role;
GRANT EXECUTE ON FUNCTION lock_monitoring.hash_key(text[]), lock_monitoring.bk_timestamp(timestamptz) TO lock_monitoring_role;
