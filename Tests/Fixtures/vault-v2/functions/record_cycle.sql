-- record_cycle(jsonb): how the daemon writes one sampling cycle — one call, one transaction,
-- one round trip per cycle. It only validates the document and hands each entity family to its
-- own record_* function (one file each in this folder); the document's shape is
-- Sources/LockvaultEngine/Vault/CycleRecord.swift, whose row keys are the columns written.
--
-- Every family follows the same rules: hubs and links are inserted if new; a satellite gets a
-- row only when its hash_diff differs from the current row; current rows of things no longer
-- seen get their load_end_date. Replaying the same cycle (a retry after a failed commit)
-- changes nothing, so retries never duplicate rows.

-- Vaults that applied migration 013 before it moved here had record_cycle split in two
-- (record_cycle_rows + a reason update); record_blockers writes the reason now.
DROP FUNCTION IF EXISTS lock_monitoring.record_cycle_rows(jsonb);

CREATE OR REPLACE FUNCTION lock_monitoring.record_cycle(p jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
AS $fn$
DECLARE
    v_sysid text := p->>'system_identifier';
    v_src   text := p->>'record_source';
    v_at    timestamptz := (p->>'captured_at')::timestamptz;
    v_stats jsonb := '{}';
BEGIN
    IF v_sysid IS NULL OR v_src IS NULL OR v_at IS NULL THEN
        RAISE EXCEPTION 'record_cycle: system_identifier, record_source and captured_at are required' USING ERRCODE = '22023';
    END IF;

    INSERT INTO monitored_cluster_h (cluster_hk, system_identifier, load_date, record_source)
    VALUES (cluster_hk(v_sysid), v_sysid, v_at, v_src) ON CONFLICT DO NOTHING;

    -- Order matters only where a family refers to another's hubs: sessions first.
    PERFORM record_sessions(v_sysid, v_src, v_at, p->'sessions');
    v_stats := v_stats || record_locks(v_sysid, v_src, v_at, p->'locks');
    PERFORM record_lock_waits(v_sysid, v_src, v_at, p->'waits');
    v_stats := v_stats || record_blockers(v_sysid, v_src, v_at, p->'blockers');
    PERFORM record_deadlock_counters(v_sysid, v_src, v_at, p->'deadlock_counters');
    v_stats := v_stats || record_deadlocks(v_sysid, v_src, v_at, p->'deadlocks');
    PERFORM record_deadlock_participants(v_sysid, v_src, v_at, p->'deadlock_participants');
    PERFORM record_resolve_decisions(v_sysid, v_src, v_at, p->'decisions');
    PERFORM record_monitor_gap(v_sysid, v_src, p->'gap');
    PERFORM record_cycle_summary(v_sysid, v_src, v_at, coalesce((p->>'heartbeat_seconds')::float8, 60), p->'summary');
    RETURN v_stats;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.record_cycle(jsonb) IS
    'Writes one lockvault sampling cycle (idempotent: replaying the same cycle changes nothing). Called by the daemon, one transaction per cycle.';
GRANT EXECUTE ON FUNCTION lock_monitoring.record_cycle(jsonb) TO lock_writer_role;
