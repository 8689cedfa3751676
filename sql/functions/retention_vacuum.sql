-- Retention's VACUUM (the daemon runs it after cleanup_old_data's parts, Sources/LockvaultEngine/Vault/Retention.swift).

-- What cleanup_old_data DELETEs from leaves dead tuples until a VACUUM: the hubs and links no
-- row refers to any more (alert_h among them), the default partitions' old rows, the analysis
-- (the daily partitions it drops leave none). VACUUM can't run inside a function, so the daemon runs
-- these statements after a run that removed rows (Sources/LockvaultEngine/Vault/Retention.swift),
-- as a DBA may: every ordinary table of the schema but the daily partitions, those this role may
-- vacuum (owner; MAINTAIN where the server has it, server_has('maintain'): migration 028). A
-- table with nothing to reclaim costs a visibility-map read. For the others, statement is NULL: autovacuum (migration 028 sets
-- the hubs' and links' thresholds) or the DBA reclaims them.
CREATE OR REPLACE FUNCTION lock_monitoring.retention_vacuum_statements()
RETURNS TABLE (table_name text, statement text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, lock_monitoring
AS $fn$
    SELECT c.relname::text,
           CASE WHEN pg_has_role(current_user, c.relowner, 'USAGE')
                     OR CASE WHEN lock_monitoring.server_has('maintain')
                             THEN has_table_privilege(c.oid, 'MAINTAIN') ELSE false END
                THEN format('VACUUM lock_monitoring.%I', c.relname) END
    FROM pg_class c
    WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind = 'r'
      AND (NOT c.relispartition OR pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT')
    ORDER BY c.relname
$fn$;
COMMENT ON FUNCTION lock_monitoring.retention_vacuum_statements() IS
    'The VACUUM to run after cleanup_old_data for each table it may DELETE from (every ordinary table but the daily partitions, which it drops whole); statement is NULL where the current role may not vacuum the table.';
