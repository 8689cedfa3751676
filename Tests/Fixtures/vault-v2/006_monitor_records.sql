-- Migration 006: records about the monitoring itself (added by lockvault, not in the seed).

-- One row per change of the cycle summary, and a heartbeat at least once a minute: enough for
-- `lockvault status` and lag, without writing WAL every second when nothing changes.
CREATE TABLE IF NOT EXISTS lock_monitoring.monitor_cycle_s (
    cluster_hk          bytea NOT NULL REFERENCES lock_monitoring.monitored_cluster_h,
    load_date           timestamptz NOT NULL,
    load_end_date       timestamptz,
    hash_diff           bytea NOT NULL,
    record_source       text NOT NULL,
    cluster_name        text,
    last_cycle_at       timestamptz NOT NULL,
    cycle_ms            double precision NOT NULL,
    backends            integer NOT NULL,
    waiting_sessions    integer NOT NULL,
    blockers            integer NOT NULL,
    critical_blockers   integer NOT NULL,
    locks_captured      integer NOT NULL,
    locks_in_use        integer,
    lock_table_capacity integer,
    server_version_num  integer,
    PRIMARY KEY (cluster_hk, load_date)
);
COMMENT ON TABLE lock_monitoring.monitor_cycle_s IS
    'Satellite (lockvault): summary of sampling cycles; a row when the summary changes and a heartbeat at least every minute.';
COMMENT ON COLUMN lock_monitoring.monitor_cycle_s.last_cycle_at IS 'When the cycle that wrote this row sampled the cluster.';
COMMENT ON COLUMN lock_monitoring.monitor_cycle_s.locks_in_use IS 'Shared lock-table entries in use (not fast-path), when read in that cycle.';
COMMENT ON COLUMN lock_monitoring.monitor_cycle_s.lock_table_capacity IS 'max_locks_per_transaction x (max_connections + max_prepared_transactions).';

-- Periods in which lockvault did not observe the cluster (reconnects, vault outage, restarts).
CREATE TABLE IF NOT EXISTS lock_monitoring.monitor_gap_s (
    cluster_hk    bytea NOT NULL REFERENCES lock_monitoring.monitored_cluster_h,
    load_date     timestamptz NOT NULL,
    load_end_date timestamptz,
    hash_diff     bytea NOT NULL,
    record_source text NOT NULL,
    gap_start     timestamptz NOT NULL,
    gap_end       timestamptz NOT NULL,
    reason        text NOT NULL,
    PRIMARY KEY (cluster_hk, load_date)
);
COMMENT ON TABLE lock_monitoring.monitor_gap_s IS 'Satellite (lockvault): a period with no observations: nothing is known about locks between gap_start and gap_end.';
COMMENT ON COLUMN lock_monitoring.monitor_gap_s.reason IS 'e.g. "target connection lost", "vault unavailable", "daemon restarted".';

-- pg_stat_database.deadlocks per database, written when it changes.
CREATE TABLE IF NOT EXISTS lock_monitoring.deadlock_counter_s (
    cluster_hk     bytea NOT NULL REFERENCES lock_monitoring.monitored_cluster_h,
    database_name  text NOT NULL,
    load_date      timestamptz NOT NULL,
    load_end_date  timestamptz,
    hash_diff      bytea NOT NULL,
    record_source  text NOT NULL,
    deadlocks      bigint NOT NULL,
    PRIMARY KEY (cluster_hk, database_name, load_date)
);
COMMENT ON TABLE lock_monitoring.deadlock_counter_s IS 'Satellite (lockvault): pg_stat_database.deadlocks as last seen per database.';

-- Every resolve decision, acted on or not: the audit trail of the most dangerous thing
-- lockvault does. An event satellite: rows are never superseded (load_end_date stays NULL).
CREATE TABLE IF NOT EXISTS lock_monitoring.resolve_decision_s (
    blocking_session_hk bytea NOT NULL REFERENCES lock_monitoring.blocking_session_h,
    load_date           timestamptz NOT NULL,
    load_end_date       timestamptz,
    hash_diff           bytea NOT NULL,
    record_source       text NOT NULL,
    decision            text NOT NULL,
    reason              text NOT NULL,
    dry_run             boolean NOT NULL,
    action              text,
    outcome             text,
    severity            text,
    blocked_sessions_count integer,
    blocking_seconds    double precision,
    decided_by          text NOT NULL,
    PRIMARY KEY (blocking_session_hk, load_date)
);
COMMENT ON TABLE lock_monitoring.resolve_decision_s IS 'Satellite (lockvault): audit of every auto-resolve decision (would act, cancelled, terminated, skipped) and why.';
COMMENT ON COLUMN lock_monitoring.resolve_decision_s.decision IS 'would_cancel, would_terminate, cancelled, terminated, skipped, recommend_only, failed.';
COMMENT ON COLUMN lock_monitoring.resolve_decision_s.reason IS 'Why: e.g. "excluded role", "rate limit", "identity changed", "superuser", "below min severity".';
COMMENT ON COLUMN lock_monitoring.resolve_decision_s.decided_by IS '"daemon" or "cli" and the host.';
