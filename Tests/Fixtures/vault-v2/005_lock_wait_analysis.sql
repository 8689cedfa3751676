-- Migration 005: aggregated lock-wait analysis (filled by analyze_lock_waits()).

CREATE TABLE IF NOT EXISTS lock_monitoring.lock_wait_analysis_h (
    lock_wait_analysis_hk bytea PRIMARY KEY,
    tenant_hk             bytea NOT NULL,
    system_identifier     text NOT NULL,
    period_start          timestamptz NOT NULL,
    period_end            timestamptz NOT NULL,
    database_name         text NOT NULL,
    lock_target           text NOT NULL,
    lock_mode             text NOT NULL,
    load_date             timestamptz NOT NULL,
    record_source         text NOT NULL
);
COMMENT ON TABLE lock_monitoring.lock_wait_analysis_h IS 'Hub: one analysis bucket = cluster x period x database x lock target x waited-for mode.';

CREATE TABLE IF NOT EXISTS lock_monitoring.lock_wait_analysis_s (
    lock_wait_analysis_hk bytea NOT NULL REFERENCES lock_monitoring.lock_wait_analysis_h,
    load_date             timestamptz NOT NULL,
    load_end_date         timestamptz,
    hash_diff             bytea NOT NULL,
    record_source         text NOT NULL,
    wait_count            integer NOT NULL,
    total_wait_seconds    double precision NOT NULL,
    avg_wait_seconds      double precision NOT NULL,
    max_wait_seconds      double precision NOT NULL,
    p95_wait_seconds      double precision NOT NULL,
    top_blockers          text[] NOT NULL,
    recommendation        text NOT NULL,
    PRIMARY KEY (lock_wait_analysis_hk, load_date)
);
COMMENT ON TABLE lock_monitoring.lock_wait_analysis_s IS 'Satellite: wait statistics of a bucket; re-analysing a period adds a row only if the numbers changed.';
COMMENT ON COLUMN lock_monitoring.lock_wait_analysis_s.wait_count IS 'Recorded waits (one per waiting lock seen) in the period.';
COMMENT ON COLUMN lock_monitoring.lock_wait_analysis_s.p95_wait_seconds IS '95th percentile wait, in seconds (waits still running count up to the period end).';
COMMENT ON COLUMN lock_monitoring.lock_wait_analysis_s.top_blockers IS 'Most frequent blockers: "user/application" labels, most frequent first.';
COMMENT ON COLUMN lock_monitoring.lock_wait_analysis_s.recommendation IS 'What to look at, e.g. lock_timeout for DDL, shorter transactions.';
