-- Migration 022: retention (sql/functions/cleanup_old_data.sql) looks only at the hubs that the
-- rows it removed referred to — and, for sessions, also at the session hubs first seen on the
-- days it dropped, since a cycle writes a hub for every session it names, even one that no
-- satellite or link refers to. This index finds those by load_date.
CREATE INDEX IF NOT EXISTS blocking_session_h_load_date ON lock_monitoring.blocking_session_h (load_date);
COMMENT ON INDEX lock_monitoring.blocking_session_h_load_date IS
    'Session hubs by first-seen time: retention finds the hubs first seen on the days it drops (cleanup_old_data).';
