-- Migration 027: the current row of each deadlock counter, found without reading its history.
-- record_deadlock_counters looks up and end-dates a counter's current row by (cluster, database)
-- in every daily partition; through the primary key that read every row the counter ever had
-- in each partition (one per change). Partial, so each partition's index holds only the counters
-- still current there: usually none.
CREATE INDEX IF NOT EXISTS deadlock_counter_s_current ON lock_monitoring.deadlock_counter_s (cluster_hk, database_name) WHERE load_end_date IS NULL;
COMMENT ON INDEX lock_monitoring.deadlock_counter_s_current IS
    'The current pg_stat_database.deadlocks row of each monitored database: what record_deadlock_counters compares and end-dates.';
