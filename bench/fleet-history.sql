-- 30 days of fleet history for the fleet bench (bench/fleet.sh), made from the rows the fleet
-- replay really wrote: every row of lock_monitoring (but the cluster hubs and the alert trail)
-- is copied :copies times, shifted back in time by i x (:days days / :copies), its hub and link
-- keys re-hashed per copy (sha256 of the key and the copy number), so copies are other sessions,
-- locks and deadlocks of the same clusters. Rows still current in the replay are closed in the
-- copies (load_end_date = load_date + 1 s), except deadlocks, which lockvault leaves current.
-- Columns are found by name and type (…_hk bytea keys, timestamptz times), not listed.
--
--   psql -d VAULT -v copies=120 -v days=30 -f bench/fleet-history.sql
\set ON_ERROR_STOP on
SELECT set_config('lv.copies', :'copies', false), set_config('lv.days', :'days', false);
SET synchronous_commit = off;
-- The copies are consistent by construction: skip the per-row foreign-key triggers (superuser only).
SET session_replication_role = replica;
SELECT count(*) AS partitions_created
FROM lock_monitoring.create_history_partitions((now() AT TIME ZONE 'UTC')::date - :days - 1, (now() AT TIME ZONE 'UTC')::date + 8);

DO $copy$
DECLARE
    v_copies integer := current_setting('lv.copies')::integer;
    v_step   interval := make_interval(secs => current_setting('lv.days')::integer * 86400.0 / current_setting('lv.copies')::integer);
    v_t      record;
    v_cols   text;
    v_sel    text;
    v_close  boolean;
BEGIN
    FOR v_t IN
        SELECT c.relname FROM pg_class c
        WHERE c.relnamespace = 'lock_monitoring'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND c.relname NOT IN ('schema_migrations', 'monitored_cluster_h', 'history_partitioning') AND c.relname NOT LIKE 'alert%'
        ORDER BY 1
    LOOP
        v_close := v_t.relname NOT IN ('deadlock_event_s', 'resolve_decision_s', 'monitor_gap_s');
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum),
               string_agg(CASE
                   WHEN a.attname LIKE '%\_hk' AND a.attname NOT IN ('cluster_hk', 'tenant_hk') AND a.atttypid = 'bytea'::regtype
                       THEN format('sha256(%I || int4send(k))', a.attname)
                   WHEN a.attname = 'load_end_date' AND v_close THEN 'coalesce(load_end_date, load_date + interval ''1 second'') - k * $1'
                   WHEN a.atttypid = 'timestamptz'::regtype THEN format('%I - k * $1', a.attname)
                   ELSE quote_ident(a.attname) END, ', ' ORDER BY a.attnum)
        INTO v_cols, v_sel
        FROM pg_attribute a
        WHERE a.attrelid = format('lock_monitoring.%I', v_t.relname)::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
        EXECUTE format('INSERT INTO lock_monitoring.%I (%s) SELECT %s FROM lock_monitoring.%I, generate_series(1, %s) k',
                       v_t.relname, v_cols, v_sel, v_t.relname, v_copies) USING v_step;
    END LOOP;
END
$copy$;
RESET session_replication_role;
VACUUM (ANALYZE);
