-- record_cycle(jsonb): how the daemon writes one sampling cycle — one call, one transaction,
-- one round trip per cycle. It only validates the document and hands each entity family to its
-- own record_* function (one file each in this folder); the document's shape is
-- Sources/LockvaultEngine/Vault/CycleRecord.swift, whose row keys are the columns written.
--
-- Every family follows the same rules: hubs and links are inserted if new (before the rows that
-- refer to them: the history tables have no foreign keys, migration 023); a satellite gets a
-- row only when its hash_diff differs from the current row; current rows of things no longer
-- seen get their load_end_date. Replaying the same cycle (a retry after a failed commit)
-- changes nothing, so retries never duplicate rows.
--
-- Every record_* function plans its statements once per session (plan_cache_mode =
-- force_generic_plan): their statements on current rows read every daily partition (a current
-- row may be in any day's), so a custom plan, which PostgreSQL otherwise makes for each call
-- while it compares, plans all of them every cycle, and planning then costs more than the
-- write itself, growing with the number of days kept.
--
-- A document is a whole cycle (mode absent or 'all': every current lock and blocker; those of
-- this cluster not in it are end-dated), or, with mode 'changes', only what changed since the
-- daemon's last successful write: new and changed rows, and the keys of locks and blockers that
-- ended (ended_locks, ended_blockers). The daemon decides which (LockvaultCore VaultChanges)
-- and sends a whole cycle whenever it does not know for certain what the vault holds.
--
-- The alert trail rides along in both modes (alerts: those raised this cycle; alert_deliveries:
-- the sinks' outcomes finished since the last cycle), so it is buffered, spooled and replayed
-- with the cycles: the daemon has one write path (record_alerts.sql). So do the blocking
-- episodes (episodes: what started, who joined, what ended; record_episodes.sql).

-- A vault that applied migration 013's first text has record_cycle split in two
-- (record_cycle_rows + a reason update): record_blockers writes the reason, so the split-off
-- half is dropped.
DROP FUNCTION IF EXISTS lock_monitoring.record_cycle_rows(jsonb);

CREATE OR REPLACE FUNCTION lock_monitoring.record_cycle(p jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_sysid text := p->>'system_identifier';
    v_src   text := p->>'record_source';
    v_at    timestamptz := (p->>'captured_at')::timestamptz;
    v_stats jsonb := '{}';
    v_changes boolean := coalesce(p->>'mode', 'all') = 'changes';
BEGIN
    IF v_sysid IS NULL OR v_src IS NULL OR v_at IS NULL THEN
        RAISE EXCEPTION 'record_cycle: system_identifier, record_source and captured_at are required' USING ERRCODE = '22023';
    END IF;
    IF coalesce(p->>'mode', 'all') NOT IN ('all', 'changes') THEN
        RAISE EXCEPTION 'record_cycle: mode must be "all" or "changes", got "%"', p->>'mode' USING ERRCODE = '22023';
    END IF;

    -- Shared with every other writer; retention holds it exclusively (hub_lock.sql): no hub this
    -- cycle reuses can be removed before it commits, and none is removed while it writes.
    PERFORM pg_advisory_xact_lock_shared(hub_lock_key());

    INSERT INTO monitored_cluster_h (cluster_hk, system_identifier, load_date, record_source)
    VALUES (cluster_hk(v_sysid), v_sysid, v_at, v_src) ON CONFLICT DO NOTHING;

    -- Order matters only where a family refers to another's hubs: sessions first. A family with
    -- nothing to write is not called: each call reads every partition of its satellite (current
    -- rows may be in any day's), so a heartbeat or a change to one family stays cheap in a vault
    -- with many days of history. Whole locks and blockers are always called (they end-date what
    -- is not in the cycle); counters are never end-dated by absence.
    IF coalesce(p->'sessions', '[]') <> '[]' THEN
        PERFORM record_sessions(v_sysid, v_src, v_at, p->'sessions');
    END IF;
    IF NOT v_changes OR coalesce(p->'locks', '[]') <> '[]' OR coalesce(p->'ended_locks', '[]') <> '[]' THEN
        v_stats := v_stats || record_locks(v_sysid, v_src, v_at, p->'locks', CASE WHEN v_changes THEN coalesce(p->'ended_locks', '[]') END);
    ELSE
        v_stats := v_stats || jsonb_build_object('locks_ended', 0, 'lock_rows', 0);
    END IF;
    IF coalesce(p->'waits', '[]') <> '[]' THEN
        PERFORM record_lock_waits(v_sysid, v_src, v_at, p->'waits');
    END IF;
    IF NOT v_changes OR coalesce(p->'blockers', '[]') <> '[]' OR coalesce(p->'ended_blockers', '[]') <> '[]' THEN
        v_stats := v_stats || record_blockers(v_sysid, v_src, v_at, p->'blockers', CASE WHEN v_changes THEN coalesce(p->'ended_blockers', '[]') END);
    ELSE
        v_stats := v_stats || jsonb_build_object('blockers_ended', 0, 'blocker_rows', 0);
    END IF;
    IF coalesce(p->'deadlock_counters', '[]') <> '[]' THEN
        PERFORM record_deadlock_counters(v_sysid, v_src, v_at, p->'deadlock_counters');
    END IF;
    IF coalesce(p->'deadlocks', '[]') <> '[]' THEN
        v_stats := v_stats || record_deadlocks(v_sysid, v_src, v_at, p->'deadlocks');
    ELSE
        v_stats := v_stats || jsonb_build_object('deadlock_rows', 0);
    END IF;
    IF coalesce(p->'deadlock_participants', '[]') <> '[]' THEN
        PERFORM record_deadlock_participants(v_sysid, v_src, v_at, p->'deadlock_participants');
    END IF;
    IF coalesce(p->'decisions', '[]') <> '[]' THEN
        PERFORM record_resolve_decisions(v_sysid, v_src, v_at, p->'decisions');
    END IF;
    -- (No episode tables: a vault built with today's functions over a schema before migration
    -- 035, as the upgrade tests build one; `lockvault migrate` applies 035 before any daemon writes.)
    IF (coalesce(p->'episodes'->'started', '[]') <> '[]' OR coalesce(p->'episodes'->'joined', '[]') <> '[]'
        OR coalesce(p->'episodes'->'ended', '[]') <> '[]') AND to_regclass('lock_monitoring.blocking_episode_h') IS NOT NULL THEN
        v_stats := v_stats || record_episodes(v_sysid, v_src, v_at, p->'episodes');
    END IF;
    IF coalesce(p->'alerts', '[]') <> '[]' OR coalesce(p->'alert_deliveries', '[]') <> '[]' THEN
        v_stats := v_stats || record_alerts(v_sysid, v_src, p->'alerts', p->'alert_deliveries');
    END IF;
    PERFORM record_monitor_gap(v_sysid, v_src, p->'gap');
    PERFORM record_cycle_summary(v_sysid, v_src, v_at, coalesce((p->>'heartbeat_seconds')::float8, 60), p->'summary');
    -- When the current summary row was written (epoch seconds): the daemon's next heartbeat is due a heartbeat after it.
    RETURN v_stats || jsonb_build_object('summary_at', (SELECT extract(epoch FROM max(last_cycle_at)) FROM monitor_cycle_s
                                                         WHERE cluster_hk = cluster_hk(v_sysid) AND load_end_date IS NULL));
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.record_cycle(jsonb) IS
    'Writes one lockvault sampling cycle, whole or (mode changes) only what changed since the daemon''s last write; idempotent: replaying the same document changes nothing. Called by the daemon, one transaction per cycle.';
GRANT EXECUTE ON FUNCTION lock_monitoring.record_cycle(jsonb) TO lock_writer_role;
