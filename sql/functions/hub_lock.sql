-- The vault's hub lock: what keeps a writer from attaching a row to a hub that retention is
-- removing. The partitioned history has no foreign keys to its hubs (migration 023), so
-- "nothing refers to this hub any more" is only true while no writer can add a reference:
-- record_cycle holds this advisory lock shared for its transaction (writers don't wait for
-- each other), cleanup_old_data holds it exclusively for its own (it waits for the writes
-- in flight to commit, and new writes wait for it). Writers take it before any table lock
-- and retention before any table lock too, so the two never deadlock.
-- In pg_locks: locktype advisory, classid 423, objid 2926103815, objsubid 1.

CREATE OR REPLACE FUNCTION lock_monitoring.hub_lock_key()
RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT 1819697270023::bigint
$fn$;
COMMENT ON FUNCTION lock_monitoring.hub_lock_key() IS
    'Key of the vault''s hub lock (pg_advisory_xact_lock): record_cycle holds it shared, cleanup_old_data exclusively, so no write attaches a row to a hub retention is removing.';
GRANT EXECUTE ON FUNCTION lock_monitoring.hub_lock_key() TO lock_writer_role, lock_monitoring_role;
