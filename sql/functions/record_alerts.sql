-- The alert trail: alert_h (one incident), alert_event_s (each alert lockvault emitted) and
-- alert_delivery_s (what each sink made of it). The daemon writes them as parts of its cycle
-- documents (record_cycle's alerts and alert_deliveries), so they share the cycles' one write
-- path: buffered while the vault is away, spooled, replayed in order after a restart. Every
-- row is keyed by what it is — the incident's alert_id; (incident, event_at, kind) for an
-- event; that and the sink for a delivery — and inserted only if new, so writing a document
-- again (a replay after kill -9, a retry after a failed commit) adds nothing.
-- Event row: {alert_id, event_at, kind, severity, previous_severity, summary, payload (the JSON text the sinks got)}.
-- Delivery row: {alert_id, event_at, kind, sink, outcome, attempts, error, finished_at}.
-- A delivery's event is always in the same or an earlier document (an alert is recorded in
-- the cycle that raised it, before any sink can finish with it); there is no foreign key
-- between them (migration 032: both leave with their day).

CREATE OR REPLACE FUNCTION lock_monitoring.record_alerts(p_sysid text, p_src text, p_events jsonb, p_deliveries jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
SET plan_cache_mode = force_generic_plan
AS $fn$
DECLARE
    v_events integer;
    v_deliveries integer;
BEGIN
    INSERT INTO alert_h (alert_hk, alert_id, cluster_hk, load_date, record_source)
    SELECT DISTINCT ON (e.j->>'alert_id') hash_key(e.j->>'alert_id'), e.j->>'alert_id', cluster_hk(p_sysid), now(), p_src
    FROM jsonb_array_elements(coalesce(p_events, '[]')) AS e(j)
    ON CONFLICT DO NOTHING;

    INSERT INTO alert_event_s (alert_hk, event_at, kind, load_date, record_source, severity, previous_severity, summary, payload)
    SELECT hash_key(e.j->>'alert_id'), (e.j->>'event_at')::timestamptz, e.j->>'kind', now(), p_src, e.j->>'severity',
           e.j->>'previous_severity', e.j->>'summary', (e.j->>'payload')::jsonb
    FROM jsonb_array_elements(coalesce(p_events, '[]')) AS e(j)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_events = ROW_COUNT;

    INSERT INTO alert_delivery_s (alert_hk, event_at, kind, sink, load_date, record_source, outcome, attempts, error, finished_at)
    SELECT hash_key(d.j->>'alert_id'), (d.j->>'event_at')::timestamptz, d.j->>'kind', d.j->>'sink', now(), p_src, d.j->>'outcome',
           (d.j->>'attempts')::integer, d.j->>'error', (d.j->>'finished_at')::timestamptz
    FROM jsonb_array_elements(coalesce(p_deliveries, '[]')) AS d(j)
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS v_deliveries = ROW_COUNT;

    RETURN jsonb_build_object('alert_events', v_events, 'alert_deliveries', v_deliveries);
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.record_alerts(text, text, jsonb, jsonb) IS
    'record_cycle part: the alert trail (alert_h, alert_event_s, alert_delivery_s); idempotent: an event or delivery already recorded is not added again. Returns events and deliveries added.';
GRANT EXECUTE ON FUNCTION lock_monitoring.record_alerts(text, text, jsonb, jsonb) TO lock_writer_role;
