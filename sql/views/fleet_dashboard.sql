-- The fleet at a glance (sql/functions/fleet_status.sql has the rule and the query): one row
-- per monitored cluster, stale ones first, then the most critical.

CREATE OR REPLACE VIEW lock_monitoring.fleet_dashboard AS
SELECT f.cluster_name, f.system_identifier, f.state, f.last_cycle_at, f.lag_seconds,
       f.critical_blockers, f.high_blockers, f.medium_blockers, f.low_blockers, f.waiting_sessions, f.longest_wait_seconds,
       f.deadlocks_24h, f.daemon_version, f.buffered_cycles, f.spooled_cycles, f.vault_buffer, f.recorded_by,
       f.cycle_ms, f.locks_in_use, f.lock_table_capacity, f.last_gap_end
FROM lock_monitoring.fleet_status() f;
COMMENT ON VIEW lock_monitoring.fleet_dashboard IS
    'One row per monitored cluster writing into this vault: alive or stale, current blockers by severity, longest wait, deadlocks in 24 h, daemon version, vault buffer. Same rows as lockvault status.';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.cluster_name IS 'The daemon''s cluster_name (config), ''-'' when unset.';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.system_identifier IS 'pg_control_system().system_identifier of the monitored cluster: its identity in the vault.';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.state IS 'alive: its last cycle is younger than 90 s (one missed 60 s heartbeat and some lag); stale: older — the daemon stopped, hangs, or can''t reach the vault. lockvault status --stale-after changes the 90.';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.last_cycle_at IS 'Sample time of the last cycle recorded (the monitored server''s clock).';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.lag_seconds IS 'Seconds from last_cycle_at to now (the vault''s clock): up to 60 s is normal for a quiet cluster (heartbeat).';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.critical_blockers IS 'Sessions blocking others right now at CRITICAL severity (blocking_sessions_dashboard).';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.high_blockers IS 'Sessions blocking others right now at HIGH severity.';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.medium_blockers IS 'Sessions blocking others right now at MEDIUM severity.';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.low_blockers IS 'Sessions blocking others right now at LOW severity.';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.waiting_sessions IS 'Sessions waiting on a lock (for at least sampling.min_wait_seconds) in the last recorded cycle summary.';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.longest_wait_seconds IS 'Seconds the longest current lock wait has lasted (lock_activity_dashboard); NULL when nobody waits.';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.deadlocks_24h IS 'Deadlocks detected in the last 24 hours (deadlock_events_dashboard).';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.daemon_version IS 'Version of the lockvault that wrote the last cycle summary; NULL before lockvault recorded it.';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.buffered_cycles IS 'Cycle records the daemon held for the vault when it built its last recorded cycle; NULL before lockvault recorded it.';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.spooled_cycles IS 'Of those, how many were in its spool on disk.';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.vault_buffer IS 'empty, catching up: N cycles buffered (, M spooled), or unknown (rows from before lockvault recorded it).';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.recorded_by IS 'record_source of the last summary: lockvault@<host>/<cluster name>.';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.cycle_ms IS 'Duration of that cycle, in milliseconds.';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.locks_in_use IS 'Shared lock-table entries in use, when last read.';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.lock_table_capacity IS 'max_locks_per_transaction x (max_connections + max_prepared_transactions).';
COMMENT ON COLUMN lock_monitoring.fleet_dashboard.last_gap_end IS 'End of the most recent period lockvault did not observe the cluster (monitor_gap_s), NULL if none.';

-- Read-only: SELECT for readers (lock_admin_role through lock_monitoring_role) and the daemon.
REVOKE ALL ON lock_monitoring.fleet_dashboard FROM PUBLIC, lock_writer_role;
GRANT SELECT ON lock_monitoring.fleet_dashboard TO lock_monitoring_role, lock_writer_role;
