-- Migration 002: lock activity — every lock lockvault captured (waiting, blocking, held by a
-- prepared transaction, or held by a long transaction).

CREATE TABLE IF NOT EXISTS lock_monitoring.lock_activity_h (
    lock_activity_hk  bytea PRIMARY KEY,
    tenant_hk         bytea NOT NULL,
    system_identifier text NOT NULL,
    holder_kind       text NOT NULL CHECK (holder_kind IN ('session', 'prepared')),
    session_pid       integer,
    session_start     timestamptz,
    prepared_gid      text,
    lock_type         text NOT NULL,
    database_oid      oid,
    lock_target_key   text NOT NULL,
    lock_mode         text NOT NULL,
    load_date         timestamptz NOT NULL,
    record_source     text NOT NULL
);
COMMENT ON TABLE lock_monitoring.lock_activity_h IS
    'Hub: one lock = holder (session pid + backend_start, or prepared gid) x lock target x mode, on one cluster.';
COMMENT ON COLUMN lock_monitoring.lock_activity_h.lock_target_key IS 'Canonical text of the pg_locks target fields (relation, page, tuple, xid, classid/objid/objsubid…).';
COMMENT ON COLUMN lock_monitoring.lock_activity_h.tenant_hk IS 'Tenant: hash of the database name unless mapped in config.';

CREATE TABLE IF NOT EXISTS lock_monitoring.lock_activity_s (
    lock_activity_hk  bytea NOT NULL REFERENCES lock_monitoring.lock_activity_h,
    load_date         timestamptz NOT NULL,
    load_end_date     timestamptz,
    hash_diff         bytea NOT NULL,
    record_source     text NOT NULL,
    lock_type         text NOT NULL,
    lock_mode         text NOT NULL,
    lock_granted      boolean NOT NULL,
    database_name     text,
    relation_name     text,
    lock_target       text NOT NULL,
    advisory_key      text,
    wait_start        timestamptz,
    lock_since        timestamptz NOT NULL,
    blocking_pid      integer,
    blocked_by_pids   integer[],
    session_pid       integer,
    user_name         text,
    application_name  text,
    client_addr       text,
    session_state     text,
    query             text,
    lock_duration_seconds double precision
        GENERATED ALWAYS AS (extract(epoch FROM (load_end_date - lock_since))) STORED,
    PRIMARY KEY (lock_activity_hk, load_date)
);
COMMENT ON TABLE lock_monitoring.lock_activity_s IS
    'Satellite: attributes of a captured lock. A new row only when they change; load_end_date NULL = current; set when the lock ends or the row is superseded.';
COMMENT ON COLUMN lock_monitoring.lock_activity_s.lock_type IS 'pg_locks.locktype (relation, tuple, transactionid, advisory, …).';
COMMENT ON COLUMN lock_monitoring.lock_activity_s.lock_mode IS 'pg_locks.mode, e.g. AccessExclusiveLock.';
COMMENT ON COLUMN lock_monitoring.lock_activity_s.lock_granted IS 'true = held, false = waiting.';
COMMENT ON COLUMN lock_monitoring.lock_activity_s.relation_name IS 'Schema-qualified relation, resolved in the lock''s own database; NULL = unknown or not a relation lock.';
COMMENT ON COLUMN lock_monitoring.lock_activity_s.lock_target IS 'What is locked, for people: "relation public.orders", "advisory key 42", "transaction 1234".';
COMMENT ON COLUMN lock_monitoring.lock_activity_s.advisory_key IS 'Advisory locks: the key as the application passed it: 42 (bigint form) or (1, 2) (int, int form).';
COMMENT ON COLUMN lock_monitoring.lock_activity_s.wait_start IS 'pg_locks.waitstart: when the wait began (waiting locks).';
COMMENT ON COLUMN lock_monitoring.lock_activity_s.lock_since IS 'Start of this lock state: wait_start for a waiting lock, else when lockvault first saw it held (or the transaction start).';
COMMENT ON COLUMN lock_monitoring.lock_activity_s.blocking_pid IS 'For a waiting lock: the (first) pid it waits for; 0 = a prepared transaction.';
COMMENT ON COLUMN lock_monitoring.lock_activity_s.blocked_by_pids IS 'For a waiting lock: pg_blocking_pids() of its session.';
COMMENT ON COLUMN lock_monitoring.lock_activity_s.user_name IS 'Session user holding or waiting for the lock (owner for a prepared transaction).';
COMMENT ON COLUMN lock_monitoring.lock_activity_s.application_name IS 'application_name of the session.';
COMMENT ON COLUMN lock_monitoring.lock_activity_s.query IS 'The session''s query text when captured (truncated to sampling.query_text_length).';
COMMENT ON COLUMN lock_monitoring.lock_activity_s.lock_duration_seconds IS
    'Seconds from lock_since to load_end_date: final for ended rows, NULL while current (live duration: lock_activity_dashboard).';
