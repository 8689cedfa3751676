-- Retention: deletes history and alerts older than the retention — closed satellite rows
-- (load_end_date older than the cutoff), event rows by age, then hubs and links nothing
-- references any more. Current rows are never deleted, whatever their age. The daemon runs it
-- (retention.days); DBAs may too.

-- Vaults migrated before the functions moved to sql/functions had the history part split off
-- as cleanup_old_history (migration 012 renamed it to add the alert trail); it is one function
-- again.
DROP FUNCTION IF EXISTS lock_monitoring.cleanup_old_history(integer);

CREATE OR REPLACE FUNCTION lock_monitoring.cleanup_old_data(retention_days integer DEFAULT 30)
RETURNS TABLE (table_name text, rows_deleted bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
AS $fn$
DECLARE
    v_cutoff timestamptz;
    v_n bigint;
BEGIN
    IF retention_days IS NULL OR retention_days < 1 THEN
        RAISE EXCEPTION 'cleanup_old_data: retention_days must be at least 1, got %', retention_days USING ERRCODE = '22023';
    END IF;
    v_cutoff := now() - make_interval(days => retention_days);

    DELETE FROM lock_activity_s WHERE load_end_date < v_cutoff;           GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'lock_activity_s'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM blocking_session_s WHERE load_end_date < v_cutoff;        GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'blocking_session_s'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM deadlock_involvement_s WHERE load_end_date < v_cutoff;    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'deadlock_involvement_s'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM deadlock_event_s WHERE load_end_date < v_cutoff;          GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'deadlock_event_s'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM lock_wait_analysis_s WHERE load_end_date < v_cutoff;      GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'lock_wait_analysis_s'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM monitor_cycle_s WHERE load_end_date < v_cutoff;           GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'monitor_cycle_s'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM deadlock_counter_s WHERE load_end_date < v_cutoff;        GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'deadlock_counter_s'; rows_deleted := v_n; RETURN NEXT;
    -- Event satellites (never superseded): by age.
    DELETE FROM monitor_gap_s WHERE gap_end < v_cutoff;                   GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'monitor_gap_s'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM resolve_decision_s r WHERE r.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM blocking_session_s s WHERE s.blocking_session_hk = r.blocking_session_hk AND s.load_end_date IS NULL);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'resolve_decision_s'; rows_deleted := v_n; RETURN NEXT;

    -- Links, then hubs, that nothing references any more and that are themselves old.
    DELETE FROM lock_blocking_l l WHERE l.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM lock_activity_s s WHERE s.lock_activity_hk = l.lock_activity_hk);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'lock_blocking_l'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM deadlock_involvement_l l WHERE l.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM deadlock_involvement_s s WHERE s.deadlock_involvement_hk = l.deadlock_involvement_hk)
        AND NOT EXISTS (SELECT 1 FROM deadlock_event_s s WHERE s.deadlock_event_hk = l.deadlock_event_hk);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'deadlock_involvement_l'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM lock_activity_h h WHERE h.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM lock_activity_s s WHERE s.lock_activity_hk = h.lock_activity_hk)
        AND NOT EXISTS (SELECT 1 FROM lock_blocking_l l WHERE l.lock_activity_hk = h.lock_activity_hk);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'lock_activity_h'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM deadlock_event_h h WHERE h.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM deadlock_event_s s WHERE s.deadlock_event_hk = h.deadlock_event_hk)
        AND NOT EXISTS (SELECT 1 FROM deadlock_involvement_l l WHERE l.deadlock_event_hk = h.deadlock_event_hk);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'deadlock_event_h'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM blocking_session_h h WHERE h.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM blocking_session_s s WHERE s.blocking_session_hk = h.blocking_session_hk)
        AND NOT EXISTS (SELECT 1 FROM resolve_decision_s r WHERE r.blocking_session_hk = h.blocking_session_hk)
        AND NOT EXISTS (SELECT 1 FROM lock_blocking_l l WHERE l.blocking_session_hk = h.blocking_session_hk OR l.blocked_session_hk = h.blocking_session_hk)
        AND NOT EXISTS (SELECT 1 FROM deadlock_involvement_l l WHERE l.blocking_session_hk = h.blocking_session_hk);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'blocking_session_h'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM lock_wait_analysis_h h WHERE h.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM lock_wait_analysis_s s WHERE s.lock_wait_analysis_hk = h.lock_wait_analysis_hk);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'lock_wait_analysis_h'; rows_deleted := v_n; RETURN NEXT;

    -- The alert trail: events are never superseded, so they go by age; an incident's hub
    -- once none of its events remain.
    DELETE FROM alert_delivery_s WHERE event_at < v_cutoff;   GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'alert_delivery_s'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM alert_event_s WHERE event_at < v_cutoff;      GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'alert_event_s'; rows_deleted := v_n; RETURN NEXT;
    DELETE FROM alert_h h WHERE h.load_date < v_cutoff
        AND NOT EXISTS (SELECT 1 FROM alert_event_s e WHERE e.alert_hk = h.alert_hk);
    GET DIAGNOSTICS v_n = ROW_COUNT; table_name := 'alert_h'; rows_deleted := v_n; RETURN NEXT;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.cleanup_old_data(integer) IS
    'Deletes closed history and alerts older than retention_days (never current rows; hubs/links only when unreferenced). Returns rows deleted per table.';
GRANT EXECUTE ON FUNCTION lock_monitoring.cleanup_old_data(integer) TO lock_writer_role;
