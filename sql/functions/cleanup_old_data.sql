-- Retention: removes history and alerts older than the retention — closed satellite rows
-- (load_end_date older than the cutoff), point events (deadlocks, alerts, gaps, resolve
-- decisions) by their day, blocking episodes by the day they started, then hubs and links nothing references any more. Current rows are never removed, whatever their age, and neither are
-- the hubs they point to. The daemon runs it (retention.days); DBAs may too.
--
-- Partitioned history loses whole days, so that retention leaves no dead rows and no vacuum
-- debt: a daily partition that ends before the cutoff is detached and dropped, after the rows
-- its keep_when rule keeps (current rows, rows closed after the cutoff) are moved to the default
-- partition. Rows may therefore stay up to a day longer than retention_days. The default
-- partition (those kept rows, and writes no partition covered) is cleaned by DELETE. The
-- current rows of the state satellites (a blocker blocking now, a lock held now) have a
-- partition of their own (history_partitioning.range_table is the tree of days), which
-- retention never reads. The point events (deadlocks and their participants, monitor gaps,
-- resolve decisions, the alert trail) have none: each row is in its own day's partition and
-- leaves with it (keep_when false; the alert trail's days are those of event_at,
-- history_partitioning.partition_column). Hubs and links are not partitioned and are DELETEd,
-- but only those the removed rows referred to are looked at: proving a hub unreferenced probes
-- every partition of the tables that refer to it, so looking at every old hub would cost
-- seconds on every run.
--
-- Hubs, links and the alert trail are not partitioned and are DELETEd. Only the hubs and links
-- the removed rows referred to are looked at, and the session hubs first seen on the dropped
-- days: proving a hub unreferenced probes every partition of the tables that refer to it, far
-- too slow for every old hub on every run.
--
-- The history has no foreign keys to its hubs, so a removed hub is proven unreferenced once,
-- and dropping a partition locks no hub. The hub lock (hub_lock.sql) guarantees what keys
-- would: whatever removes hubs holds it exclusively, taken before any table lock (writers take
-- it shared before theirs, so the two never deadlock); no write is in flight while it decides
-- that nothing refers to a hub, and none starts until it commits — a writer then re-creates a
-- hub it needs (record_cycle inserts every hub it names if missing). A run with nothing to
-- drop or delete does not take it.
--
-- Two parts, so that writers wait for one batch of hubs rather than a day's: retention_drop
-- removes the rows and records the keys they referred to in retention_retired_key;
-- retention_sweep takes those keys in batches and removes the hubs and links nothing refers to
-- any more, holding the hub lock for one batch. cleanup_old_data runs both in one transaction
-- (what DBAs call); the daemon runs the drop, then each batch in a transaction of its own
-- (Sources/LockvaultEngine/Vault/Retention.swift).
-- SECURITY DEFINER: dropping a partition needs the tables' owner.

-- A vault migrated before the functions moved to sql/functions may have the history part split
-- off as cleanup_old_history (migration 012 renamed it to add the alert trail): this one function
-- does both, so that one is dropped.
DROP FUNCTION IF EXISTS lock_monitoring.cleanup_old_history(integer);
-- retention_drop gained p_table (one table's days in a transaction of their own, as the daemon
-- runs it): a new argument list is a new function.
DROP FUNCTION IF EXISTS lock_monitoring.retention_drop(integer);
-- Its result gained partitions_dropped (migration 020): a new result type needs a new function.
DO $shape$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_proc WHERE oid = to_regprocedure('lock_monitoring.cleanup_old_data(integer)')
               AND NOT 'partitions_dropped' = ANY (proargnames)) THEN
        DROP FUNCTION lock_monitoring.cleanup_old_data(integer);
    END IF;
END
$shape$;

-- Which of p_keys the partitioned table p_table still refers to (in p_column), asked once for
-- all of them: a key retention_sweep needs for a link and for a hub is looked up once. Each
-- key costs an index probe of every partition (a nested-loop semi-join over the partitioned
-- table; measured faster than asking each partition for all the keys). Never a hash join: for
-- some thousand keys the planner chose to hash the whole history (every partition read whole,
-- 0.4 s over the fleet bench's 0.9 million lock rows, and growing with the history, not the keys).
CREATE OR REPLACE FUNCTION lock_monitoring.history_references(p_table text, p_column text, p_keys bytea[])
RETURNS bytea[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, lock_monitoring
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $fn$
DECLARE
    v_found bytea[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM history_partitioning hp WHERE hp.table_name = p_table) THEN
        RAISE EXCEPTION 'history_references: % is not a partitioned history table', p_table USING ERRCODE = '22023';
    END IF;
    IF coalesce(cardinality(p_keys), 0) = 0 THEN
        RETURN '{}';
    END IF;
    EXECUTE format('SELECT coalesce(array_agg(k.hk), ''{}'') FROM unnest($1) AS k(hk) '
                   'WHERE EXISTS (SELECT 1 FROM lock_monitoring.%I t WHERE t.%I = k.hk)', p_table, p_column)
        INTO v_found USING p_keys;
    RETURN v_found;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.history_references(text, text, bytea[]) IS
    'Retention''s check (cleanup_old_data): which of the keys some row of the partitioned history table still refers to in column p_column.';
REVOKE ALL ON FUNCTION lock_monitoring.history_references(text, text, bytea[]) FROM PUBLIC;

-- Retired keys: the hubs and links whose rows retention_drop removed, waiting for
-- retention_sweep to remove those nothing refers to any more. A table, not a transaction's
-- temporary one, so that the sweep can run after the drop, in batches (migration 029).

-- Retention, part 1: whole days of the partitioned history, the default partitions' old
-- rows and the analysis rows; the keys the removed rows referred to are kept in
-- retention_retired_key. It takes no hub lock: it removes no hub, and writers (which take the
-- hub lock before their table locks) wait only for its table locks. A DBA calls
-- cleanup_old_data, which runs both parts in one transaction.
--
-- With p_table, only that table's days and default partition: the daemon runs it table by
-- table, each in a transaction of its own, then once without p_table for the rest. Why: a
-- dashboard reads several history tables in one statement (alerts_dashboard: the events, then
-- their deliveries), taking their locks in its own order, while dropping a day holds its
-- table's lock until commit; holding two tables' locks, retention could wait for a reader that
-- waits for it (a deadlock, and the dashboard query was the one cancelled). Holding one
-- table's at a time, it never does. Without p_table, the days of every table in one
-- transaction: it first locks every table it drops days from, all at once and without
-- waiting, again after 10 ms until it gets them all, so it never waits while it holds one.
CREATE OR REPLACE FUNCTION lock_monitoring.retention_drop(retention_days integer DEFAULT 30, p_table text DEFAULT NULL)
RETURNS TABLE (table_name text, rows_deleted bigint, partitions_dropped integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, lock_monitoring, pg_temp
AS $fn$
DECLARE
    v_cutoff timestamptz;
    v_n bigint;
    v_all bigint;
    v_t record;
    v_p record;
    v_cols text;
    v_keys text[];
    v_key text;
    v_born_from timestamptz;
    v_born_to timestamptz;
    v_drop jsonb;
    v_lock text;
BEGIN
    IF retention_days IS NULL OR retention_days < 1 THEN
        RAISE EXCEPTION 'retention: retention_days must be at least 1, got %', retention_days USING ERRCODE = '22023';
    END IF;
    v_cutoff := now() - make_interval(days => retention_days);
    -- Every daemon of a fleet may run this: one at a time (and never beside create_history_partitions).
    PERFORM pg_advisory_xact_lock(hashtext('lock_monitoring history partitions'));
    -- The days to drop, read once (a partition's range costs a deparse of its bound).
    SELECT jsonb_agg(jsonb_build_object('table_name', r.table_name, 'partition_name', r.partition_name,
                                        'range_start', r.range_start, 'range_end', r.range_end))
    INTO v_drop
    FROM history_partition_ranges(p_table) r WHERE NOT r.is_default AND r.range_end <= v_cutoff;
    IF p_table IS NOT NULL AND NOT EXISTS (SELECT 1 FROM history_partitioning hp WHERE hp.table_name = p_table) THEN
        RAISE EXCEPTION 'retention_drop: % is not a partitioned history table', p_table USING ERRCODE = '22023';
    END IF;
    IF p_table IS NULL THEN
        SELECT string_agg(DISTINCT format('lock_monitoring.%I', hp.range_table), ', ') INTO v_lock
        FROM history_partitioning hp
        WHERE hp.table_name IN (SELECT d.table_name FROM jsonb_to_recordset(coalesce(v_drop, '[]')) AS d(table_name text));
        WHILE v_lock IS NOT NULL LOOP
            BEGIN
                EXECUTE 'LOCK TABLE ' || v_lock || ' IN ACCESS EXCLUSIVE MODE NOWAIT';
                EXIT;
            EXCEPTION WHEN lock_not_available THEN
                -- The subtransaction's locks are released: nothing is held while it waits.
                PERFORM pg_sleep(0.01);
            END;
        END LOOP;
    END IF;
    -- The hub and link keys that removed rows referred to (key_column = the column's name) go
    -- to retention_retired_key: the only hubs and links that may have become unreferenced,
    -- for retention_sweep to decide about.

    -- Partitioned history: whole days.
    FOR v_t IN SELECT hp.table_name, hp.range_table, hp.keep_when, hp.partition_column FROM history_partitioning hp
               WHERE p_table IS NULL OR hp.table_name = p_table ORDER BY hp.table_name LOOP
        table_name := v_t.table_name; rows_deleted := 0; partitions_dropped := 0;
        SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum),
               array_agg(attname::text ORDER BY attnum) FILTER (WHERE attname LIKE '%\_hk' AND atttypid = 'bytea'::regtype
                                                                  AND attname NOT IN ('cluster_hk', 'tenant_hk'))
        INTO v_cols, v_keys
        FROM pg_attribute WHERE attrelid = format('lock_monitoring.%I', v_t.table_name)::regclass
          AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
        FOR v_p IN SELECT p.partition_name, p.range_start, p.range_end
                   FROM jsonb_to_recordset(coalesce(v_drop, '[]')) AS p(table_name text, partition_name text, range_start timestamptz, range_end timestamptz)
                   WHERE p.table_name = v_t.table_name ORDER BY p.range_start LOOP
            -- Detached first: from here on no writer can change its rows (they wait for this
            -- transaction), so what is moved is what the partition holds.
            EXECUTE format('ALTER TABLE lock_monitoring.%I DETACH PARTITION lock_monitoring.%I', v_t.range_table, v_p.partition_name);
            EXECUTE format('SELECT count(*) FROM lock_monitoring.%I', v_p.partition_name) INTO v_all;
            EXECUTE format('INSERT INTO lock_monitoring.%I (%s) SELECT %s FROM lock_monitoring.%I t WHERE (%s) IS NOT FALSE',
                           v_t.table_name, v_cols, v_cols, v_p.partition_name, v_t.keep_when) USING v_cutoff;
            GET DIAGNOSTICS v_n = ROW_COUNT;
            FOREACH v_key IN ARRAY coalesce(v_keys, '{}') LOOP
                EXECUTE format('INSERT INTO lock_monitoring.retention_retired_key (key_column, hk, cutoff) '
                               'SELECT DISTINCT %L, t.%I, $1 FROM lock_monitoring.%I t WHERE (%s) IS FALSE '
                               'ON CONFLICT DO NOTHING', v_key, v_key, v_p.partition_name, v_t.keep_when) USING v_cutoff;
            END LOOP;
            EXECUTE format('DROP TABLE lock_monitoring.%I', v_p.partition_name);
            rows_deleted := rows_deleted + v_all - v_n;
            partitions_dropped := partitions_dropped + 1;
            v_born_from := least(v_born_from, v_p.range_start);
            v_born_to := greatest(v_born_to, v_p.range_end);
        END LOOP;
        -- The default partition (rows kept from dropped days, writes for days without a partition): by DELETE.
        IF v_keys IS NULL THEN
            EXECUTE format('DELETE FROM lock_monitoring.%I t WHERE t.%I < $1 AND (%s) IS FALSE', v_t.range_table || '_default', v_t.partition_column, v_t.keep_when)
                USING v_cutoff;
            GET DIAGNOSTICS v_n = ROW_COUNT;
        ELSE
            EXECUTE format('WITH d AS (DELETE FROM lock_monitoring.%I t WHERE t.%I < $1 AND (%s) IS FALSE RETURNING %s), '
                           'k AS (INSERT INTO lock_monitoring.retention_retired_key (key_column, hk, cutoff) %s ON CONFLICT DO NOTHING) '
                           'SELECT count(*) FROM d',
                           v_t.range_table || '_default', v_t.partition_column, v_t.keep_when,
                           (SELECT string_agg(format('t.%I', k), ', ') FROM unnest(v_keys) k),
                           (SELECT string_agg(format('SELECT %L, d.%I, $1 FROM d', k, k), ' UNION ') FROM unnest(v_keys) k))
                INTO v_n USING v_cutoff;
        END IF;
        rows_deleted := rows_deleted + v_n;
        RETURN NEXT;
    END LOOP;

    -- Session hubs first seen on the dropped days: a cycle writes the hub of every session it
    -- names, so these may be referenced by no removed row at all.
    IF v_born_from IS NOT NULL THEN
        INSERT INTO retention_retired_key (key_column, hk, cutoff)
        SELECT 'blocking_session_hk', h.blocking_session_hk, v_cutoff FROM blocking_session_h h
        WHERE h.load_date >= v_born_from AND h.load_date < least(v_born_to, v_cutoff) ON CONFLICT DO NOTHING;
    END IF;
    IF p_table IS NOT NULL THEN
        RETURN;
    END IF;

    partitions_dropped := 0;
    DELETE FROM lock_wait_analysis_s WHERE load_end_date < v_cutoff;      GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'lock_wait_analysis_s'; rows_deleted := v_n; RETURN NEXT;

    DELETE FROM lock_wait_analysis_h h WHERE h.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM lock_wait_analysis_s s WHERE s.lock_wait_analysis_hk = h.lock_wait_analysis_hk);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'lock_wait_analysis_h'; rows_deleted := v_n; RETURN NEXT;
    -- (The alert trail's events and deliveries go with their days, above, since migration 032;
    -- their incidents' hubs with retention_sweep.)
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.retention_drop(integer, text) IS
    'Retention, part 1 (cleanup_old_data runs both parts): drops the daily partitions older than retention_days (their kept rows moved to the default partition), DELETEs old rows of the default partitions and the analysis, and records the hub and link keys the removed rows referred to in retention_retired_key for retention_sweep. With p_table, only that table''s days and default partition (the daemon runs each table in a transaction of its own, then the rest without p_table). Takes no hub lock. Returns rows removed and partitions dropped per table.';
REVOKE ALL ON FUNCTION lock_monitoring.retention_drop(integer, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lock_monitoring.retention_drop(integer, text) TO lock_writer_role;

-- Retention, part 2: up to batch_size retired keys (lock keys first: removing their links
-- retires session keys, which this batch then takes too), the links and hubs among them that
-- nothing refers to any more removed, the rest forgotten (a later drop retires them again).
-- It holds the hub lock exclusively for its transaction, so writers wait for one batch, not
-- for a whole day's hubs. With no retired key it does nothing and takes no lock. Returns rows
-- removed per table, and in retention_retired_key the keys it took.
CREATE OR REPLACE FUNCTION lock_monitoring.retention_sweep(batch_size integer DEFAULT 500)
RETURNS TABLE (table_name text, rows_deleted bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, lock_monitoring, pg_temp
AS $fn$
DECLARE
    v_cutoff timestamptz;
    v_n bigint;
    v_taken bigint;
    v_lock bytea[];
    v_lock_kept bytea[];
    v_inv_kept bytea[];
    v_event bytea[];
    v_event_kept bytea[];
    v_session bytea[];
    v_session_kept bytea[];
    v_episode bytea[];
    v_episode_kept bytea[];
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'retention_sweep: batch_size must be at least 1, got %', batch_size USING ERRCODE = '22023';
    END IF;
    -- Its checks that nothing refers to a hub must see what writers committed until it got the
    -- hub lock: a statement snapshot each, as READ COMMITTED gives (a transaction snapshot,
    -- taken before the lock, could miss a write and remove a hub a new row points to).
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'cleanup_old_data: run it at READ COMMITTED isolation, not %', current_setting('transaction_isolation')
            USING ERRCODE = '0A000';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM retention_retired_key) THEN
        FOREACH table_name IN ARRAY ARRAY['lock_blocking_l', 'deadlock_involvement_l', 'lock_activity_h', 'deadlock_event_h',
                                          'blocking_episode_session_l', 'blocking_episode_h', 'blocking_session_h', 'alert_h',
                                          'retention_retired_key'] LOOP
            rows_deleted := 0; RETURN NEXT;
        END LOOP;
        RETURN;
    END IF;
    -- The hub lock, before any table lock (hub_lock.sql): no write is in flight while this
    -- batch decides that nothing refers to a hub, and none starts until it commits.
    PERFORM pg_advisory_xact_lock(hub_lock_key());
    CREATE TEMP TABLE IF NOT EXISTS lv_retired_keys (key_column text, hk bytea, PRIMARY KEY (key_column, hk)) ON COMMIT DROP;
    TRUNCATE pg_temp.lv_retired_keys;
    WITH b AS (
        DELETE FROM retention_retired_key r
        WHERE (r.key_column, r.hk) IN (SELECT x.key_column, x.hk FROM retention_retired_key x
                                       ORDER BY x.key_column = 'blocking_session_hk', x.key_column, x.hk LIMIT batch_size)
        RETURNING r.key_column, r.hk, r.cutoff),
    k AS (INSERT INTO pg_temp.lv_retired_keys SELECT b.key_column, b.hk FROM b ON CONFLICT DO NOTHING)
    SELECT count(*), min(b.cutoff) INTO v_taken, v_cutoff FROM b;

    -- Links, then hubs, that are old and that nothing references any more. Only the keys the
    -- removed rows (and removed links) referred to are looked at — and, for sessions, whose
    -- hub a cycle writes for every session it names, also the hubs first seen on the dropped
    -- days: any other hub still has the reference it had before this run. Which of them the
    -- partitioned history still refers to is asked once per key set and table
    -- (history_references).
    v_lock := ARRAY(SELECT r.hk FROM pg_temp.lv_retired_keys r WHERE r.key_column = 'lock_activity_hk');
    v_lock_kept := history_references('lock_activity_s', 'lock_activity_hk', v_lock);
    WITH d AS (
        DELETE FROM lock_blocking_l l
        WHERE l.lock_activity_hk = ANY (v_lock) AND l.lock_activity_hk <> ALL (v_lock_kept) AND l.load_date < v_cutoff
        RETURNING l.blocking_session_hk, l.blocked_session_hk),
    k AS (
        INSERT INTO pg_temp.lv_retired_keys SELECT 'blocking_session_hk', d.blocking_session_hk FROM d
        UNION SELECT 'blocking_session_hk', d.blocked_session_hk FROM d ON CONFLICT DO NOTHING)
    SELECT count(*) INTO v_n FROM d;
    table_name := 'lock_blocking_l'; rows_deleted := v_n; RETURN NEXT;

    -- Deadlock participations whose own rows and whose event's rows are all gone.
    CREATE TEMP TABLE IF NOT EXISTS lv_involvements (deadlock_involvement_hk bytea PRIMARY KEY, deadlock_event_hk bytea NOT NULL) ON COMMIT DROP;
    TRUNCATE pg_temp.lv_involvements;
    INSERT INTO pg_temp.lv_involvements
    SELECT l.deadlock_involvement_hk, l.deadlock_event_hk FROM deadlock_involvement_l l
    WHERE l.load_date < v_cutoff
      AND (l.deadlock_involvement_hk IN (SELECT r.hk FROM pg_temp.lv_retired_keys r WHERE r.key_column = 'deadlock_involvement_hk')
           OR l.deadlock_event_hk IN (SELECT r.hk FROM pg_temp.lv_retired_keys r WHERE r.key_column = 'deadlock_event_hk'));
    v_inv_kept := history_references('deadlock_involvement_s', 'deadlock_involvement_hk',
                                     ARRAY(SELECT i.deadlock_involvement_hk FROM pg_temp.lv_involvements i));
    v_event := ARRAY(SELECT r.hk FROM pg_temp.lv_retired_keys r WHERE r.key_column = 'deadlock_event_hk'
                     UNION SELECT i.deadlock_event_hk FROM pg_temp.lv_involvements i);
    v_event_kept := history_references('deadlock_event_s', 'deadlock_event_hk', v_event);
    WITH d AS (
        DELETE FROM deadlock_involvement_l l USING pg_temp.lv_involvements i
        WHERE l.deadlock_involvement_hk = i.deadlock_involvement_hk
          AND l.deadlock_involvement_hk <> ALL (v_inv_kept) AND l.deadlock_event_hk <> ALL (v_event_kept)
        RETURNING l.deadlock_event_hk, l.blocking_session_hk),
    k AS (
        INSERT INTO pg_temp.lv_retired_keys SELECT 'blocking_session_hk', d.blocking_session_hk FROM d ON CONFLICT DO NOTHING)
    SELECT count(*) INTO v_n FROM d;
    table_name := 'deadlock_involvement_l'; rows_deleted := v_n; RETURN NEXT;

    DELETE FROM lock_activity_h h
    WHERE h.lock_activity_hk = ANY (v_lock) AND h.lock_activity_hk <> ALL (v_lock_kept) AND h.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM lock_blocking_l l WHERE l.lock_activity_hk = h.lock_activity_hk);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'lock_activity_h'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM deadlock_event_h h
    WHERE h.deadlock_event_hk = ANY (v_event) AND h.deadlock_event_hk <> ALL (v_event_kept) AND h.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM deadlock_involvement_l l WHERE l.deadlock_event_hk = h.deadlock_event_hk);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'deadlock_event_h'; rows_deleted := v_n; RETURN NEXT;
    -- Blocking episodes whose rows are all gone (they leave with the day they started): their
    -- links, retiring the sessions those name (for the session hubs below), then their hubs.
    v_episode := ARRAY(SELECT r.hk FROM pg_temp.lv_retired_keys r WHERE r.key_column = 'episode_hk');
    v_episode_kept := history_references('blocking_episode_s', 'episode_hk', v_episode);
    WITH d AS (
        DELETE FROM blocking_episode_session_l l
        WHERE l.episode_hk = ANY (v_episode) AND l.episode_hk <> ALL (v_episode_kept)
        RETURNING l.blocking_session_hk),
    k AS (
        INSERT INTO pg_temp.lv_retired_keys SELECT DISTINCT 'blocking_session_hk', d.blocking_session_hk FROM d ON CONFLICT DO NOTHING)
    SELECT count(*) INTO v_n FROM d;
    table_name := 'blocking_episode_session_l'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM blocking_episode_h h
    WHERE h.episode_hk = ANY (v_episode) AND h.episode_hk <> ALL (v_episode_kept) AND h.started_at < v_cutoff;
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'blocking_episode_h'; rows_deleted := v_n; RETURN NEXT;
    v_session := ARRAY(SELECT r.hk FROM pg_temp.lv_retired_keys r WHERE r.key_column = 'blocking_session_hk');
    v_session_kept := history_references('blocking_session_s', 'blocking_session_hk', v_session)
                      || history_references('resolve_decision_s', 'blocking_session_hk', v_session);
    DELETE FROM blocking_session_h h
    WHERE h.blocking_session_hk = ANY (v_session) AND h.blocking_session_hk <> ALL (v_session_kept) AND h.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM lock_blocking_l l WHERE l.blocking_session_hk = h.blocking_session_hk)
        AND NOT EXISTS (SELECT 1 FROM lock_blocking_l l WHERE l.blocked_session_hk = h.blocking_session_hk)
        AND NOT EXISTS (SELECT 1 FROM deadlock_involvement_l l WHERE l.blocking_session_hk = h.blocking_session_hk)
        AND NOT EXISTS (SELECT 1 FROM blocking_episode_session_l l WHERE l.blocking_session_hk = h.blocking_session_hk);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'blocking_session_h'; rows_deleted := v_n; RETURN NEXT;
    -- An alert incident whose events are all gone (the alert writer takes the hub lock shared,
    -- record_cycle, which writes the alert trail through record_alerts.sql: none is writing one now).
    DELETE FROM alert_h h
    WHERE h.alert_hk IN (SELECT r.hk FROM pg_temp.lv_retired_keys r WHERE r.key_column = 'alert_hk') AND h.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM alert_event_s e WHERE e.alert_hk = h.alert_hk);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'alert_h'; rows_deleted := v_n; RETURN NEXT;
    table_name := 'retention_retired_key'; rows_deleted := v_taken; RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.retention_sweep(integer) IS
    'Retention, part 2 (cleanup_old_data runs both parts): takes up to batch_size keys from retention_retired_key and removes the links and hubs among them that nothing refers to any more. Holds the hub lock for its transaction (writers wait for one batch). Returns rows removed per table; the row retention_retired_key is the keys taken (0: nothing left to sweep).';
REVOKE ALL ON FUNCTION lock_monitoring.retention_sweep(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lock_monitoring.retention_sweep(integer) TO lock_writer_role;

-- Both parts in one transaction, as DBAs know it: the hub lock first when a day is to be
-- dropped (before the drop's table locks, as writers take it before theirs, so the two never
-- deadlock), then the drop, then sweeps until no retired key is left. The daemon runs the
-- parts in transactions of their own instead (Sources/LockvaultEngine/Vault/Retention.swift).
CREATE OR REPLACE FUNCTION lock_monitoring.cleanup_old_data(retention_days integer DEFAULT 30)
RETURNS TABLE (table_name text, rows_deleted bigint, partitions_dropped integer)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, lock_monitoring, pg_temp
AS $fn$
BEGIN
    IF retention_days IS NULL OR retention_days < 1 THEN
        RAISE EXCEPTION 'cleanup_old_data: retention_days must be at least 1, got %', retention_days USING ERRCODE = '22023';
    END IF;
    -- Its checks that nothing refers to a hub must see what writers committed until it got the
    -- hub lock: a statement snapshot each, as READ COMMITTED gives (a transaction snapshot,
    -- taken before the lock, could miss a write and remove a hub a new row points to).
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'cleanup_old_data: run it at READ COMMITTED isolation, not %', current_setting('transaction_isolation')
            USING ERRCODE = '0A000';
    END IF;
    IF EXISTS (SELECT 1 FROM history_partition_ranges() r WHERE NOT r.is_default AND r.range_end <= now() - make_interval(days => retention_days)) THEN
        PERFORM pg_advisory_xact_lock(hub_lock_key());
    END IF;
    CREATE TEMP TABLE IF NOT EXISTS lv_cleanup_report (table_name text PRIMARY KEY, rows_deleted bigint, partitions_dropped integer, ord serial) ON COMMIT DROP;
    TRUNCATE pg_temp.lv_cleanup_report;
    INSERT INTO pg_temp.lv_cleanup_report (table_name, rows_deleted, partitions_dropped) SELECT * FROM retention_drop(retention_days);
    LOOP
        INSERT INTO pg_temp.lv_cleanup_report AS c (table_name, rows_deleted, partitions_dropped)
        SELECT s.table_name, s.rows_deleted, 0 FROM retention_sweep(1000000) s WHERE s.table_name <> 'retention_retired_key'
        ON CONFLICT ON CONSTRAINT lv_cleanup_report_pkey DO UPDATE SET rows_deleted = c.rows_deleted + EXCLUDED.rows_deleted;
        EXIT WHEN NOT EXISTS (SELECT 1 FROM retention_retired_key);
    END LOOP;
    RETURN QUERY SELECT c.table_name, c.rows_deleted, c.partitions_dropped FROM pg_temp.lv_cleanup_report c ORDER BY c.ord;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.cleanup_old_data(integer) IS
    'Removes closed history and alerts older than retention_days (never current rows, nor the hubs they point to; hubs/links only when unreferenced): partitioned history by dropping whole days, the rest by DELETE; retention_drop then retention_sweep, in one transaction. Writes wait for a run that drops or deletes anything (it holds the hub lock, hub_lock_key()). Returns rows removed and partitions dropped per table.';
REVOKE ALL ON FUNCTION lock_monitoring.cleanup_old_data(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lock_monitoring.cleanup_old_data(integer) TO lock_writer_role;
