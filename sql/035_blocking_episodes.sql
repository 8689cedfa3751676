-- Migration 035: blocking episodes — one root blocker's incident, from the first wait behind it
-- to the moment nobody waits behind it any more (LockvaultCore EpisodeTracker; the definition
-- and its cases are in docs/operations.md, "Blocking episodes").
--
-- Written through the cycles' one write path (record_cycle's `episodes` part,
-- sql/functions/record_episodes.sql): change-only — a hub and a satellite row when an episode
-- starts, a link when a session joins it, a satellite row when it ends; never a row per cycle.
-- Every row is keyed by what it is and inserted only if new, so a replayed document adds
-- nothing. Read through blocking_episodes_dashboard, episode_story() and top_blockers().
--
-- The satellite is partitioned by the UTC day of the episode's start (history_partitioning,
-- partition_column started_at, keep_when false): both rows of an episode share a partition and
-- leave together with retention; its hub and links are swept when nothing refers to them
-- (retention_sweep). An episode still open when its start day leaves the retention loses its
-- start row; its end row, written later, carries what the start row would have.

-- Hub: one episode. Its business key is the id the daemon derives from the cluster, the root's
-- identity and transaction, and the start (EpisodeTracker.id): the same in any process, so a
-- restart in the middle of an episode finds it again. started_at is the satellite's partition key.
CREATE TABLE IF NOT EXISTS lock_monitoring.blocking_episode_h (
    episode_hk    bytea PRIMARY KEY,
    episode_id    text NOT NULL,
    cluster_hk    bytea NOT NULL REFERENCES lock_monitoring.monitored_cluster_h,
    started_at    timestamptz NOT NULL,
    load_date     timestamptz NOT NULL,
    record_source text NOT NULL
);
COMMENT ON TABLE lock_monitoring.blocking_episode_h IS
    'Hub (lockvault): one blocking episode — a root blocker''s incident from the first wait behind it until nobody waits behind it. episode_hk = hash_key(episode_id).';
COMMENT ON COLUMN lock_monitoring.blocking_episode_h.episode_hk IS 'hash_key(episode_id).';
COMMENT ON COLUMN lock_monitoring.blocking_episode_h.episode_id IS
    'The episode''s id (16 hex digits), derived from the cluster, the root''s identity and transaction and the start: what lockvault episode ID, the alerts and the metrics name.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_h.cluster_hk IS 'The monitored cluster (monitored_cluster_h).';
COMMENT ON COLUMN lock_monitoring.blocking_episode_h.started_at IS 'When the first wait behind the root began (its waitstart): the start of the episode, and its satellite rows'' partition key.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_h.load_date IS 'When the vault first recorded the episode (the sample time of the cycle that saw it start).';
COMMENT ON COLUMN lock_monitoring.blocking_episode_h.record_source IS 'lockvault@host[/cluster] that recorded it.';

-- Satellite: two rows at most per episode — phase started (the root as first seen, and the
-- episode as of its first cycle) and phase ended (everything it accumulated, its waiters and
-- the resolver's decisions). The root's columns are filled in the ended row only when there is
-- no started row (its start was never recorded: a buffer lost while the vault was away, or
-- retention took it).
CREATE TABLE IF NOT EXISTS lock_monitoring.blocking_episode_s (
    episode_hk            bytea NOT NULL,
    started_at            timestamptz NOT NULL,
    phase                 text NOT NULL CHECK (phase IN ('started', 'ended')),
    load_date             timestamptz NOT NULL,
    record_source         text NOT NULL,
    ended_at              timestamptz,
    ended_by              text CHECK (ended_by IN ('root_finished', 'root_disconnected', 'root_cancelled', 'root_terminated',
                                                   'queue_cancelled', 'waiters_gave_up', 'deadlock', 'unobserved')),
    root_pid              integer,
    root_backend_start    timestamptz,
    root_gid              text,
    root_user_name        text,
    root_application_name text,
    root_client_addr      text,
    root_database_name    text,
    root_state            text,
    root_xact_start       timestamptz,
    root_query            text,
    root_query_id         bigint,
    waiting_sessions      integer NOT NULL,
    peak_waiting          integer NOT NULL,
    peak_at               timestamptz,
    wait_seconds_total    double precision NOT NULL,
    longest_wait_seconds  double precision NOT NULL,
    max_severity          text NOT NULL CHECK (max_severity IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    deepest_chain         integer NOT NULL,
    lock_targets          text[] NOT NULL,
    queued_request        boolean NOT NULL,
    waiters               jsonb,
    decisions             jsonb,
    PRIMARY KEY (episode_hk, started_at, phase)
) PARTITION BY RANGE (started_at);
CREATE TABLE IF NOT EXISTS lock_monitoring.blocking_episode_s_default PARTITION OF lock_monitoring.blocking_episode_s DEFAULT;
DO $days$
DECLARE
    v_day date;
BEGIN
    FOR v_day IN SELECT generate_series((now() AT TIME ZONE 'UTC')::date - 1, (now() AT TIME ZONE 'UTC')::date + 7, interval '1 day')::date LOOP
        EXECUTE format('CREATE TABLE IF NOT EXISTS lock_monitoring.%I PARTITION OF lock_monitoring.blocking_episode_s FOR VALUES FROM (%L) TO (%L)',
                       'blocking_episode_s_p' || to_char(v_day, 'YYYYMMDD'), v_day::timestamp AT TIME ZONE 'UTC', (v_day + 1)::timestamp AT TIME ZONE 'UTC');
    END LOOP;
END
$days$;
INSERT INTO lock_monitoring.history_partitioning (table_name, keep_when, partition_options, range_table, partition_column)
VALUES ('blocking_episode_s', 'false', NULL, 'blocking_episode_s', 'started_at')
ON CONFLICT (table_name) DO NOTHING;

COMMENT ON TABLE lock_monitoring.blocking_episode_s IS
    'Satellite (lockvault): a blocking episode when it started and when it ended — two rows at most, never one per cycle. One partition a UTC day of started_at; an episode leaves with its start day.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.episode_hk IS 'The episode (blocking_episode_h).';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.started_at IS 'The episode''s start (blocking_episode_h.started_at): the partition key.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.phase IS 'started: as of the cycle that saw it start; ended: everything it accumulated until it ended.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.load_date IS 'The sample time of the cycle that wrote the row.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.record_source IS 'lockvault@host[/cluster] that wrote it.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.ended_at IS
    'When nobody waited behind the root any more (the root''s commit when its state_change says so; else the last moment lockvault saw someone wait). NULL in the started row.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.ended_by IS
    'root_finished, root_disconnected, root_cancelled / root_terminated (by lockvault''s resolver), queue_cancelled (the resolver cancelled a queued request), waiters_gave_up (the root still held), deadlock (the server''s detector), unobserved (lockvault was not watching: ended_at is the last moment seen). NULL in the started row.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.root_pid IS 'The root session''s pid, as first seen (NULL for a prepared transaction, see root_gid).';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.root_backend_start IS 'The root session''s backend_start: with root_pid, its identity.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.root_gid IS 'For a prepared transaction root: its gid.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.root_user_name IS 'The root''s role (a prepared transaction''s owner).';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.root_application_name IS 'The root''s application_name, as first seen blocking.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.root_client_addr IS 'The root''s client address.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.root_database_name IS 'The root''s database.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.root_state IS 'The root''s pg_stat_activity.state when first seen blocking (prepared for a prepared transaction).';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.root_xact_start IS 'The root''s transaction start (for a prepared transaction: when it was prepared).';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.root_query IS 'The root''s query text when first seen blocking (cut to sampling.query_text_length).';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.root_query_id IS 'pg_stat_activity.query_id of that query, where the server computes one (compute_query_id); else NULL.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.waiting_sessions IS 'Sessions that waited behind the root (in the started row: those waiting in its first cycle).';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.peak_waiting IS 'Most sessions waiting behind the root at once, in any cycle.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.peak_at IS 'The first cycle that saw the peak.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.wait_seconds_total IS 'Session-seconds lost: the sum over waiters of their time waiting within the episode.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.longest_wait_seconds IS 'The longest single wait within the episode, in seconds.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.max_severity IS 'The highest severity of the root or any blocker within the episode (LOW … CRITICAL).';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.deepest_chain IS 'The longest chain of waits below the root (1: everyone waited for the root directly).';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.lock_targets IS 'What the waiters waited for, e.g. {"relation public.orders"} (at most 20).';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.queued_request IS 'A queued request (DDL, LOCK TABLE … waiting, with sessions queued behind it) was part of the episode.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.waiters IS
    'Ended row: each waiter as episode_story shows it ({pid, backendStart, user, application, firstWaitAt, lastWaitAt, waitedSeconds, blockedBy [{pid, kind}], lockTarget, mode, query}); NULL in the started row (blocking_episode_session_l lists who joined).';
COMMENT ON COLUMN lock_monitoring.blocking_episode_s.decisions IS
    'Ended row: the resolver''s decisions on the episode''s sessions ({at, action, pid, executed, outcome}), one per change; NULL when none.';

-- Link: the episode's root (role root) and every session that waited in it (role waiter), with
-- when it joined. Keyed by the pair and the role; no hash key of its own (narrow rows: an
-- episode is a few of them).
CREATE TABLE IF NOT EXISTS lock_monitoring.blocking_episode_session_l (
    episode_hk          bytea NOT NULL,
    blocking_session_hk bytea NOT NULL,
    role                text NOT NULL CHECK (role IN ('root', 'waiter')),
    load_date           timestamptz NOT NULL,
    record_source       text NOT NULL,
    PRIMARY KEY (episode_hk, blocking_session_hk, role)
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
CREATE INDEX IF NOT EXISTS blocking_episode_session_l_session ON lock_monitoring.blocking_episode_session_l (blocking_session_hk);
ALTER TABLE lock_monitoring.blocking_episode_h SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);
COMMENT ON TABLE lock_monitoring.blocking_episode_session_l IS
    'Link (lockvault): a session (blocking_session_h) in a blocking episode — its root, or a session that waited behind it.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_session_l.episode_hk IS 'The episode (blocking_episode_h).';
COMMENT ON COLUMN lock_monitoring.blocking_episode_session_l.blocking_session_hk IS 'The session or prepared transaction (blocking_session_h).';
COMMENT ON COLUMN lock_monitoring.blocking_episode_session_l.role IS 'root, or waiter.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_session_l.load_date IS 'For a waiter: when it began to wait behind the root; for the root: the episode''s start.';
COMMENT ON COLUMN lock_monitoring.blocking_episode_session_l.record_source IS 'lockvault@host[/cluster] that recorded it.';
COMMENT ON INDEX lock_monitoring.blocking_episode_session_l_session IS 'The episodes a session took part in; retention''s check before it removes a session hub.';

GRANT SELECT ON lock_monitoring.blocking_episode_h, lock_monitoring.blocking_episode_s, lock_monitoring.blocking_episode_session_l
    TO lock_monitoring_role, lock_writer_role;
GRANT INSERT, DELETE ON lock_monitoring.blocking_episode_h, lock_monitoring.blocking_episode_s, lock_monitoring.blocking_episode_session_l
    TO lock_writer_role;
DO $maintain$
BEGIN
    IF lock_monitoring.server_has('maintain') THEN
        EXECUTE 'GRANT MAINTAIN ON lock_monitoring.blocking_episode_h, lock_monitoring.blocking_episode_session_l, '
                'lock_monitoring.blocking_episode_s_default TO lock_writer_role';
    END IF;
END
$maintain$;
