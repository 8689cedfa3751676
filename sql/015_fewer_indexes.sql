-- Migration 015: fewer index entries per row the daemon writes, so a blocking episode costs
-- fewer bytes and less WAL. Every satellite row is inserted and later end-dated, and an end-dating
-- UPDATE writes a new entry into every index of its table; these four served no per-cycle
-- read:
-- - lock_activity_s_closed, blocking_session_s_closed: closed rows by age, for retention
--   (cleanup_old_data), which runs once a day and can afford to read the table;
-- - blocking_session_s_current_severity: no query orders by it (blocking_sessions_dashboard
--   sorts its few current rows in memory);
-- - lock_activity_h_cluster: record_locks finds a cluster's current locks through
--   lock_activity_s_current and the hub's primary key.
DROP INDEX IF EXISTS lock_monitoring.lock_activity_s_closed;
DROP INDEX IF EXISTS lock_monitoring.blocking_session_s_closed;
DROP INDEX IF EXISTS lock_monitoring.blocking_session_s_current_severity;
DROP INDEX IF EXISTS lock_monitoring.lock_activity_h_cluster;
