-- What DBAs read in psql: current state first, worst first; long text cut so rows stay
-- readable (full text is in the satellites). CREATE OR REPLACE VIEW may only add columns at
-- the end; to drop, rename, retype or move one, drop the view of the old shape first
-- (as sql/views/blocking_sessions_dashboard.sql does).

CREATE OR REPLACE VIEW lock_monitoring.lock_activity_dashboard AS
SELECT s.session_pid,
       s.lock_granted AS granted,
       s.lock_mode,
       s.lock_type,
       s.lock_target,
       s.relation_name,
       s.database_name,
       round(extract(epoch FROM (coalesce(s.load_end_date, now()) - s.lock_since))::numeric, 1)::double precision AS lock_duration_seconds,
       s.blocking_pid,
       s.user_name,
       s.application_name,
       s.session_state,
       s.advisory_key,
       h.prepared_gid,
       left(regexp_replace(s.query, '\s+', ' ', 'g'), 60) AS query,
       h.system_identifier,
       s.load_date AS recorded_at,
       s.block_kind,
       round(extract(epoch FROM now() - f.last_cycle_at)::numeric, 1)::double precision AS lag_seconds
FROM lock_monitoring.lock_activity_s s
JOIN lock_monitoring.lock_activity_h h USING (lock_activity_hk)
LEFT JOIN (SELECT mh.system_identifier, max(c.last_cycle_at) AS last_cycle_at FROM lock_monitoring.monitor_cycle_s c
           JOIN lock_monitoring.monitored_cluster_h mh USING (cluster_hk) WHERE c.load_end_date IS NULL GROUP BY 1) f
       ON f.system_identifier = h.system_identifier
WHERE s.load_end_date IS NULL
ORDER BY s.lock_granted, s.lock_since, s.session_pid;
COMMENT ON VIEW lock_monitoring.lock_activity_dashboard IS 'Locks captured right now: waiting ones first, oldest first.';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.granted IS 'false = waiting for the lock.';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.lock_duration_seconds IS 'Seconds waiting (or held, since lockvault saw it / the transaction began).';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.blocking_pid IS 'For a waiting lock: who it waits for (0 = prepared transaction).';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.block_kind IS
    'For a waiting lock: hard = blocking_pid holds the lock it wants; soft = blocking_pid holds nothing it needs and is only queued ahead of it (cancelling that queued request lets it through).';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.advisory_key IS 'Advisory lock key as the application passed it.';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.session_pid IS
    'pid of the session holding or waiting for the lock; NULL for a prepared transaction (prepared_gid).';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.lock_mode IS
    'pg_locks.mode, e.g. AccessExclusiveLock.';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.lock_type IS
    'pg_locks.locktype: relation, tuple, transactionid, advisory, …';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.lock_target IS
    'What is locked, for people: "relation public.orders", "advisory key 42", "transaction 1234".';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.relation_name IS
    'Schema-qualified relation, resolved in the lock''s own database; NULL when unknown or not a relation lock.';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.database_name IS
    'Database the lock belongs to (pg_locks.database); NULL for cluster-wide targets such as a transaction ID.';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.user_name IS
    'Role of the session holding or waiting for the lock (the owner, for a prepared transaction).';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.application_name IS
    'application_name of that session: which program to ask.';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.session_state IS
    'pg_stat_activity.state of that session when recorded (active, idle in transaction, …); prepared for a prepared transaction.';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.prepared_gid IS
    'For a prepared transaction''s lock: its gid (pg_prepared_xacts); NULL for a session''s.';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.query IS
    'The session''s query text, whitespace folded, first 60 characters (full text in lock_activity_s.query).';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.system_identifier IS
    'pg_control_system().system_identifier of the monitored cluster: tells the clusters of a fleet apart.';
COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.recorded_at IS
    'When lockvault recorded this state of the lock.';

COMMENT ON COLUMN lock_monitoring.lock_activity_dashboard.lag_seconds IS
    'How fresh this row is: seconds since the last cycle lockvault recorded for its cluster (monitor_cycle_s), which still saw it so. Up to vault.heartbeat_seconds (60) is normal for a quiet cluster; more means lockvault stopped recording it (stopped, or cannot reach the vault: fleet_dashboard says which) and the row may no longer be true. NULL when no cycle of its cluster is recorded.';

-- Read-only: SELECT for readers (lock_admin_role through lock_monitoring_role) and the daemon.
REVOKE ALL ON lock_monitoring.lock_activity_dashboard FROM PUBLIC, lock_writer_role;
GRANT SELECT ON lock_monitoring.lock_activity_dashboard TO lock_monitoring_role, lock_writer_role;
