-- Migration 023: the partitioned history tables (history_partitioning) lose their foreign keys
-- to the hubs and links they hang off, as Data Vault 2.0 loads commonly do. With them,
-- retention (cleanup_old_data) paid twice for every hub it removed: its own check that nothing
-- refers to the hub any more, and the key's check of every partition of every table that
-- refers to it; and dropping a day's partition took an ACCESS EXCLUSIVE lock on every hub its
-- keys point to (monitored_cluster_h included), so every writer and every dashboard of the
-- fleet waited for the whole run.
--
-- What the keys guaranteed is kept by the writers and by retention instead:
-- - a writer never writes a row whose hub does not exist: record_cycle writes a family's hubs
--   before (or in the same statement as) its rows, and record_blockers refuses a blocker whose
--   session hub is missing with the same error a foreign key raised (23503);
-- - retention never removes a hub a kept row refers to (its NOT EXISTS checks, as before), and
--   no writer can attach a row to a hub while retention decides about it: every record_cycle
--   holds the vault's hub lock shared (lock_monitoring.hub_lock_key()), retention holds it
--   exclusively while it runs (sql/functions/cleanup_old_data.sql).
-- The links (lock_blocking_l, deadlock_involvement_l) and the unpartitioned satellites keep
-- their foreign keys: checking them is one index probe, not one per partition.

DO $drop$
DECLARE
    v_c record;
BEGIN
    FOR v_c IN
        SELECT k.conrelid::regclass AS rel, k.conname
        FROM pg_constraint k JOIN lock_monitoring.history_partitioning hp ON k.conrelid = format('lock_monitoring.%I', hp.table_name)::regclass
        WHERE k.contype = 'f' AND k.conparentid = 0
        ORDER BY 1, 2
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', v_c.rel, v_c.conname);
    END LOOP;
END
$drop$;

COMMENT ON TABLE lock_monitoring.history_partitioning IS
    'lockvault: the history tables partitioned by load_date (one partition a UTC day + a default), and what retention keeps of a partition it drops. They have no foreign keys (migration 023): the writers write hubs first and retention removes only hubs nothing refers to, under the hub lock (hub_lock_key()).';
