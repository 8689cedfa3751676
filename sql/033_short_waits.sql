-- Migration 033: short lock waits are counted, not resolved. A wait younger than the daemon's
-- sampling.min_wait_seconds (default 1 s, PostgreSQL's own deadlock_timeout and the start of
-- log_lock_waits) costs no pg_locks read and writes no lock row; the cycle summary carries how
-- many there were and the longest wait. Neither is in the summary's hash diff: a contention storm
-- of millisecond waits changes them every second, and would otherwise write a row every second.
-- They are as of the summary row's last_cycle_at (a change or the heartbeat). NULL: written by a
-- lockvault that did not count them.

ALTER TABLE lock_monitoring.monitor_cycle_s ADD COLUMN IF NOT EXISTS short_waits integer;
ALTER TABLE lock_monitoring.monitor_cycle_s ADD COLUMN IF NOT EXISTS longest_wait_seconds double precision;
COMMENT ON COLUMN lock_monitoring.monitor_cycle_s.short_waits IS
    'Lock waits younger than sampling.min_wait_seconds, besides waiting_sessions: counted, not resolved (no blockers, no lock rows). As of last_cycle_at; not in the hash diff.';
COMMENT ON COLUMN lock_monitoring.monitor_cycle_s.longest_wait_seconds IS
    'The longest lock wait at last_cycle_at, in seconds, short waits included (as long as lockvault had seen them). Not in the hash diff.';
COMMENT ON COLUMN lock_monitoring.monitor_cycle_s.waiting_sessions IS
    'Sessions waiting for a lock for at least sampling.min_wait_seconds (every waiting session when it is 0): the waits lockvault resolved. short_waits counts the others.';
