-- Migration 012: the alert audit trail. Every alert lockvault raised and what each sink made of
-- it, so "were we paged, and when?" has an answer in the same place as the history it was about.

-- Hub: one alert incident (a blocker from first raise to clear, or one deadlock). The business
-- key is the alert id the sinks received (stable across raise/escalate/clear).
CREATE TABLE IF NOT EXISTS lock_monitoring.alert_h (
    alert_hk      bytea PRIMARY KEY,
    alert_id      text NOT NULL UNIQUE,
    cluster_hk    bytea NOT NULL REFERENCES lock_monitoring.monitored_cluster_h,
    load_date     timestamptz NOT NULL,
    record_source text NOT NULL
);
COMMENT ON TABLE lock_monitoring.alert_h IS
    'Hub (lockvault): one alert incident — a blocker from first raise to clear, or one deadlock. alert_id is what sinks received.';
COMMENT ON COLUMN lock_monitoring.alert_h.alert_id IS 'Stable id sent with every alert of the incident (use it to deduplicate in a pager).';

-- Satellite: each state change of an incident (raised, escalated, cleared, deadlock), once.
CREATE TABLE IF NOT EXISTS lock_monitoring.alert_event_s (
    alert_hk          bytea NOT NULL REFERENCES lock_monitoring.alert_h,
    event_at          timestamptz NOT NULL,
    kind              text NOT NULL CHECK (kind IN ('raised', 'escalated', 'cleared', 'deadlock')),
    load_date         timestamptz NOT NULL,
    record_source     text NOT NULL,
    severity          text NOT NULL,
    previous_severity text,
    summary           text NOT NULL,
    payload           jsonb NOT NULL,
    PRIMARY KEY (alert_hk, event_at, kind)
);
COMMENT ON TABLE lock_monitoring.alert_event_s IS
    'Satellite (lockvault): each alert lockvault emitted — one row per state change, never one per cycle.';
COMMENT ON COLUMN lock_monitoring.alert_event_s.event_at IS 'The sample time at which lockvault saw the change.';
COMMENT ON COLUMN lock_monitoring.alert_event_s.kind IS 'raised (first reached the alert severity), escalated, cleared, or deadlock.';
COMMENT ON COLUMN lock_monitoring.alert_event_s.summary IS 'The one-line text sinks received.';
COMMENT ON COLUMN lock_monitoring.alert_event_s.payload IS 'The exact JSON document sinks received (queries truncated to alerts.query_text_length).';

-- Satellite: what each sink did with each alert.
CREATE TABLE IF NOT EXISTS lock_monitoring.alert_delivery_s (
    alert_hk      bytea NOT NULL,
    event_at      timestamptz NOT NULL,
    kind          text NOT NULL,
    sink          text NOT NULL,
    load_date     timestamptz NOT NULL,
    record_source text NOT NULL,
    outcome       text NOT NULL CHECK (outcome IN ('delivered', 'failed', 'dropped')),
    attempts      integer NOT NULL,
    error         text,
    finished_at   timestamptz NOT NULL,
    PRIMARY KEY (alert_hk, event_at, kind, sink),
    FOREIGN KEY (alert_hk, event_at, kind) REFERENCES lock_monitoring.alert_event_s
);
COMMENT ON TABLE lock_monitoring.alert_delivery_s IS
    'Satellite (lockvault): the outcome of handing one alert to one configured sink (alerts.sinks).';
COMMENT ON COLUMN lock_monitoring.alert_delivery_s.sink IS 'The sink''s name from alerts.sinks.';
COMMENT ON COLUMN lock_monitoring.alert_delivery_s.outcome IS 'delivered; failed after all retries; or dropped because the sink''s queue was full.';
COMMENT ON COLUMN lock_monitoring.alert_delivery_s.attempts IS 'Attempts made (1 + retries used); 0 when dropped.';
COMMENT ON COLUMN lock_monitoring.alert_delivery_s.error IS 'The last attempt''s error (timeout, HTTP status, exit status); never carries sink headers or URLs.';

CREATE INDEX IF NOT EXISTS alert_event_s_event_at_idx ON lock_monitoring.alert_event_s (event_at DESC);

CREATE OR REPLACE VIEW lock_monitoring.alerts_dashboard AS
SELECT e.event_at,
       e.kind,
       e.severity,
       e.summary,
       h.alert_id,
       coalesce((SELECT string_agg(d.sink || ': ' || d.outcome || CASE WHEN d.attempts > 1 THEN ' after ' || d.attempts || ' attempts' ELSE '' END, ', ' ORDER BY d.sink)
                 FROM lock_monitoring.alert_delivery_s d
                 WHERE d.alert_hk = e.alert_hk AND d.event_at = e.event_at AND d.kind = e.kind), 'no sink configured') AS deliveries
FROM lock_monitoring.alert_event_s e
JOIN lock_monitoring.alert_h h USING (alert_hk)
ORDER BY e.event_at DESC;
COMMENT ON VIEW lock_monitoring.alerts_dashboard IS
    'Alerts lockvault sent, newest first, with each sink''s outcome: the answer to "were we paged?".';
COMMENT ON COLUMN lock_monitoring.alerts_dashboard.deliveries IS 'Per sink: delivered / failed / dropped (with attempts when retried).';

GRANT SELECT ON lock_monitoring.alert_h, lock_monitoring.alert_event_s, lock_monitoring.alert_delivery_s, lock_monitoring.alerts_dashboard
    TO lock_monitoring_role, lock_writer_role;
GRANT INSERT, DELETE ON lock_monitoring.alert_h, lock_monitoring.alert_event_s, lock_monitoring.alert_delivery_s TO lock_writer_role;

-- Retention covers the alert trail too: the history part of cleanup_old_data keeps its body
-- (renamed), and cleanup_old_data adds alerts older than the cutoff. Alert events are never
-- superseded, so they go by age; an incident's hub once none of its events remain.
ALTER FUNCTION lock_monitoring.cleanup_old_data(integer) RENAME TO cleanup_old_history;
COMMENT ON FUNCTION lock_monitoring.cleanup_old_history(integer) IS
    'The history part of cleanup_old_data (everything but the alert trail); call cleanup_old_data instead.';

CREATE OR REPLACE FUNCTION lock_monitoring.cleanup_old_data(retention_days integer DEFAULT 30)
RETURNS TABLE (table_name text, rows_deleted bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, lock_monitoring
AS $fn$
DECLARE
    v_cutoff timestamptz;
    v_n bigint;
BEGIN
    RETURN QUERY SELECT * FROM cleanup_old_history(retention_days);   -- validates retention_days
    v_cutoff := now() - make_interval(days => retention_days);
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
