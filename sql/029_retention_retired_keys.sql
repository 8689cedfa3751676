-- Migration 029: retention in two parts. retention_drop removes whole days and records the hub
-- and link keys the removed rows referred to here; retention_sweep later takes them in batches
-- and removes the hubs and links nothing refers to any more (sql/functions/cleanup_old_data.sql).
-- Proving a hub unreferenced costs an index probe of every daily partition, a day's hubs cost
-- seconds, and the hub lock is held meanwhile: in one transaction every writer of the fleet
-- waited for all of them, in batches it waits for one.
CREATE TABLE IF NOT EXISTS lock_monitoring.retention_retired_key (
    key_column text NOT NULL,
    hk bytea NOT NULL,
    cutoff timestamptz NOT NULL,
    PRIMARY KEY (key_column, hk)
);
COMMENT ON TABLE lock_monitoring.retention_retired_key IS
    'Hub and link keys that rows removed by retention referred to, waiting for retention_sweep (which removes those nothing refers to any more). Empty after a complete cleanup_old_data run.';
COMMENT ON COLUMN lock_monitoring.retention_retired_key.key_column IS 'The key''s column (lock_activity_hk, blocking_session_hk, deadlock_event_hk, deadlock_involvement_hk).';
COMMENT ON COLUMN lock_monitoring.retention_retired_key.hk IS 'The hash key.';
COMMENT ON COLUMN lock_monitoring.retention_retired_key.cutoff IS 'The retention cutoff of the run that retired it: only hubs and links loaded before it are removed.';
GRANT SELECT ON lock_monitoring.retention_retired_key TO lock_monitoring_role, lock_writer_role;
-- The sweep DELETEs from it: the daemon VACUUMs it after retention as it does the tables of
-- migration 028, which grants MAINTAIN on those from PostgreSQL 17 on.
DO $grant$
BEGIN
    IF current_setting('server_version_num')::int >= 170000 THEN
        EXECUTE 'GRANT MAINTAIN ON lock_monitoring.retention_retired_key TO lock_writer_role';
    END IF;
END
$grant$;
