-- Migration 028: what retention DELETEs does not stay behind as dead tuples.
-- cleanup_old_data drops whole daily partitions (no dead tuples) but still DELETEs the hubs and
-- links nothing refers to any more, and old rows of the default partitions. The daemon VACUUMs
-- those tables after a run that removed rows (retention_vacuum_statements(), in
-- sql/functions/cleanup_old_data.sql) when its role may: from PostgreSQL 17 on, the MAINTAIN
-- privilege granted here. Where it may not (PostgreSQL 15 and 16, the daemon not the owner),
-- autovacuum takes the hubs and links once 1,000 rows are dead instead of a fifth of the table
-- (hubs only grow otherwise: at the default scale factor a day's removed hubs waited for weeks).
DO $migration$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c
             WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind = 'r' AND c.relname ~ '_[hl]$' LOOP
        EXECUTE format('ALTER TABLE lock_monitoring.%I SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000)', t.relname);
    END LOOP;
    IF current_setting('server_version_num')::int >= 170000 THEN
        FOR t IN SELECT c.relname FROM pg_class c
                 WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind = 'r'
                   AND (NOT c.relispartition OR pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT') LOOP
            EXECUTE format('GRANT MAINTAIN ON lock_monitoring.%I TO lock_writer_role', t.relname);
        END LOOP;
    END IF;
END
$migration$;
