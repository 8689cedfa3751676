-- Migration 003: sessions that block others, and which lock waits on which blocker.

-- The session hub. Named as in the seed spec; it holds every session lockvault needed to name
-- (blockers, waiters, deadlock participants). A pid alone is reused by the OS, so the business
-- key is (cluster, pid, backend_start), or (cluster, gid) for a prepared transaction.
CREATE TABLE IF NOT EXISTS lock_monitoring.blocking_session_h (
    blocking_session_hk bytea PRIMARY KEY,
    tenant_hk           bytea NOT NULL,
    system_identifier   text NOT NULL,
    session_kind        text NOT NULL CHECK (session_kind IN ('session', 'prepared')),
    session_pid         integer,
    session_start       timestamptz,
    prepared_gid        text,
    load_date           timestamptz NOT NULL,
    record_source       text NOT NULL
);
COMMENT ON TABLE lock_monitoring.blocking_session_h IS
    'Hub: a session (cluster, pid, backend_start) or prepared transaction (cluster, gid) seen blocking, waiting, or in a deadlock.';
COMMENT ON COLUMN lock_monitoring.blocking_session_h.session_start IS 'pg_stat_activity.backend_start: with session_pid, the session''s identity.';
COMMENT ON COLUMN lock_monitoring.blocking_session_h.prepared_gid IS 'For a prepared transaction: its gid (pg_prepared_xacts).';

CREATE TABLE IF NOT EXISTS lock_monitoring.blocking_session_s (
    blocking_session_hk     bytea NOT NULL REFERENCES lock_monitoring.blocking_session_h,
    load_date               timestamptz NOT NULL,
    load_end_date           timestamptz,
    hash_diff               bytea NOT NULL,
    record_source           text NOT NULL,
    session_pid             integer,
    prepared_gid            text,
    user_name               text,
    application_name        text,
    database_name           text,
    client_addr             text,
    backend_type            text,
    session_state           text,
    is_superuser            boolean NOT NULL DEFAULT false,
    blocked_sessions_count  integer NOT NULL,
    directly_blocked_count  integer NOT NULL,
    blocked_pids            integer[] NOT NULL,
    blocking_started        timestamptz NOT NULL,
    blocking_severity       text NOT NULL CHECK (blocking_severity IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    held_lock_mode          text,
    lock_target             text,
    relation_name           text,
    is_root_blocker         boolean NOT NULL,
    in_deadlock_cycle       boolean NOT NULL DEFAULT false,
    recommended_action      text NOT NULL,
    auto_kill_eligible      boolean NOT NULL,
    kill_threshold_seconds  double precision NOT NULL,
    xact_start              timestamptz,
    query                   text,
    blocking_duration_seconds double precision
        GENERATED ALWAYS AS (extract(epoch FROM (load_end_date - blocking_started))) STORED,
    PRIMARY KEY (blocking_session_hk, load_date)
);
COMMENT ON TABLE lock_monitoring.blocking_session_s IS
    'Satellite: a blocker''s state while it blocks. New row when severity, victims, state or lock change; load_end_date set when it stops blocking.';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.session_pid IS 'pid of the blocking session (NULL for a prepared transaction).';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.blocked_sessions_count IS 'Sessions held up by it, directly or through chains (each counted once).';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.directly_blocked_count IS 'Sessions waiting directly for it.';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.blocked_pids IS 'pids of all sessions it holds up.';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.blocking_started IS 'When the longest wait in its tree began.';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.blocking_severity IS 'LOW / MEDIUM / HIGH / CRITICAL (config section severity:).';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.held_lock_mode IS 'Strongest mode it holds on what its waiters want.';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.lock_target IS 'What its waiters want, e.g. "relation public.orders".';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.is_root_blocker IS 'Blocks others and waits for no one: where acting helps.';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.recommended_action IS 'One line a DBA can act on (text as of load_date).';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.auto_kill_eligible IS 'Client backend, not superuser, not lockvault, CRITICAL and blocking at least kill_threshold_seconds (exclusions in config may still spare it).';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.kill_threshold_seconds IS 'Blocking time after which the resolver may act (config resolve.kill_threshold_seconds).';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.is_superuser IS 'The session''s role is a superuser: never touched unless resolve.allow_superuser.';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.blocking_duration_seconds IS
    'Seconds from blocking_started to load_end_date: final for ended rows, NULL while current (live: blocking_sessions_dashboard).';

-- Which waiting lock waited for which blocker (first seen at load_date).
CREATE TABLE IF NOT EXISTS lock_monitoring.lock_blocking_l (
    lock_blocking_hk    bytea PRIMARY KEY,
    lock_activity_hk    bytea NOT NULL REFERENCES lock_monitoring.lock_activity_h,
    blocking_session_hk bytea NOT NULL REFERENCES lock_monitoring.blocking_session_h,
    blocked_session_hk  bytea NOT NULL REFERENCES lock_monitoring.blocking_session_h,
    load_date           timestamptz NOT NULL,
    record_source       text NOT NULL
);
COMMENT ON TABLE lock_monitoring.lock_blocking_l IS
    'Link: a waiting lock (lock_activity_h) of a session (blocked_session_hk) waited for a blocker (blocking_session_hk); load_date = first seen.';
