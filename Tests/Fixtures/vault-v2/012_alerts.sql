-- Migration 012: the alert audit trail. Every alert lockvault raised and what each sink made of
-- it, so "were we paged, and when?" has an answer in the same place as the history it was about.
-- (Its view, alerts_dashboard, is in sql/views; its retention is part of cleanup_old_data in sql/functions.)

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

GRANT SELECT ON lock_monitoring.alert_h, lock_monitoring.alert_event_s, lock_monitoring.alert_delivery_s
    TO lock_monitoring_role, lock_writer_role;
GRANT INSERT, DELETE ON lock_monitoring.alert_h, lock_monitoring.alert_event_s, lock_monitoring.alert_delivery_s TO lock_writer_role;
