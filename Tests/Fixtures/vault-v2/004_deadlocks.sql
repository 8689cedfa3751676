-- Migration 004: deadlocks, from pg_stat_database counters, cycles seen live, and the server log.

CREATE TABLE IF NOT EXISTS lock_monitoring.deadlock_event_h (
    deadlock_event_hk bytea PRIMARY KEY,
    tenant_hk         bytea NOT NULL,
    system_identifier text NOT NULL,
    database_name     text NOT NULL,
    event_key         text NOT NULL,
    load_date         timestamptz NOT NULL,
    record_source     text NOT NULL
);
COMMENT ON TABLE lock_monitoring.deadlock_event_h IS
    'Hub: one deadlock in one database. Sources that see the same deadlock (counter, live cycle, server log) are merged into one event.';
COMMENT ON COLUMN lock_monitoring.deadlock_event_h.event_key IS 'lockvault''s identifier of the event within cluster and database.';

CREATE TABLE IF NOT EXISTS lock_monitoring.deadlock_event_s (
    deadlock_event_hk bytea NOT NULL REFERENCES lock_monitoring.deadlock_event_h,
    load_date         timestamptz NOT NULL,
    load_end_date     timestamptz,
    hash_diff         bytea NOT NULL,
    record_source     text NOT NULL,
    detected_at       timestamptz NOT NULL,
    database_name     text NOT NULL,
    sources           text[] NOT NULL,
    participant_count integer NOT NULL,
    participant_pids  integer[] NOT NULL,
    victim_pid        integer,
    details           text,
    PRIMARY KEY (deadlock_event_hk, load_date)
);
COMMENT ON TABLE lock_monitoring.deadlock_event_s IS 'Satellite: what is known about a deadlock; a new row when a later source adds detail.';
COMMENT ON COLUMN lock_monitoring.deadlock_event_s.detected_at IS 'When it was detected (server log time when known, else the sample that saw it).';
COMMENT ON COLUMN lock_monitoring.deadlock_event_s.sources IS 'Which sources saw it: counter (pg_stat_database.deadlocks), graph (cycle seen live), server_log.';
COMMENT ON COLUMN lock_monitoring.deadlock_event_s.participant_count IS 'Sessions in the cycle (0 when only the counter saw it).';
COMMENT ON COLUMN lock_monitoring.deadlock_event_s.victim_pid IS 'The session PostgreSQL cancelled to break it (server log), when known.';
COMMENT ON COLUMN lock_monitoring.deadlock_event_s.details IS 'The server''s "Process N waits for …" detail, when known.';

CREATE TABLE IF NOT EXISTS lock_monitoring.deadlock_involvement_l (
    deadlock_involvement_hk bytea PRIMARY KEY,
    deadlock_event_hk       bytea NOT NULL REFERENCES lock_monitoring.deadlock_event_h,
    blocking_session_hk     bytea NOT NULL REFERENCES lock_monitoring.blocking_session_h,
    load_date               timestamptz NOT NULL,
    record_source           text NOT NULL
);
COMMENT ON TABLE lock_monitoring.deadlock_involvement_l IS 'Link: a session took part in a deadlock.';

-- Per-participant detail. Links carry no attributes in Data Vault, so they live here.
CREATE TABLE IF NOT EXISTS lock_monitoring.deadlock_involvement_s (
    deadlock_involvement_hk bytea NOT NULL REFERENCES lock_monitoring.deadlock_involvement_l,
    load_date               timestamptz NOT NULL,
    load_end_date           timestamptz,
    hash_diff               bytea NOT NULL,
    record_source           text NOT NULL,
    session_pid             integer NOT NULL,
    waits_for               text,
    blocked_by_pid          integer,
    is_victim               boolean NOT NULL DEFAULT false,
    query                   text,
    PRIMARY KEY (deadlock_involvement_hk, load_date)
);
COMMENT ON TABLE lock_monitoring.deadlock_involvement_s IS 'Satellite (added by lockvault): what each participant waited for and ran.';
COMMENT ON COLUMN lock_monitoring.deadlock_involvement_s.waits_for IS 'As the server said it, e.g. "ShareLock on transaction 750".';
