-- Migration 031: hard and soft blocking edges. pg_blocking_pids() names both the sessions that
-- hold a lock a waiter needs (hard) and those only queued ahead of it with a conflicting
-- request (soft), without telling them apart. A queued request (an ALTER TABLE behind a long
-- transaction, with every later query on the table behind it) holds nothing: it is shown as
-- queued, and cancelling its statement is what frees the queue.
-- Rows written before this migration have NULL in the new columns: nobody told the kinds apart
-- then, and held_lock_mode of those rows may name a mode that was only queued for.

ALTER TABLE lock_monitoring.lock_blocking_l ADD COLUMN IF NOT EXISTS block_kind text;
COMMENT ON COLUMN lock_monitoring.lock_blocking_l.block_kind IS
    'hard: the blocker holds a lock the waiter needs, in a conflicting mode; soft: it holds nothing the waiter needs and is queued ahead of it with a conflicting request. One link per kind, from when it was first seen so; NULL for links recorded before lockvault told them apart.';

ALTER TABLE lock_monitoring.lock_activity_s ADD COLUMN IF NOT EXISTS block_kind text;
COMMENT ON COLUMN lock_monitoring.lock_activity_s.block_kind IS
    'For a waiting lock: how it waits for blocking_pid, hard (blocking_pid holds the lock) or soft (blocking_pid is queued ahead of it); NULL for granted locks and rows recorded before lockvault told them apart.';

ALTER TABLE lock_monitoring.blocking_session_s ADD COLUMN IF NOT EXISTS blocks_as text;
ALTER TABLE lock_monitoring.blocking_session_s ADD COLUMN IF NOT EXISTS queued_for_mode text;
COMMENT ON COLUMN lock_monitoring.blocking_session_s.blocks_as IS
    'holder (every waiter waits for a lock it holds), queued (every waiter is queued behind its own waiting request: a queued request) or holder+queued; NULL for rows recorded before lockvault told them apart.';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.queued_for_mode IS 'The lock mode it waits for itself, when it waits.';
COMMENT ON COLUMN lock_monitoring.blocking_session_s.held_lock_mode IS
    'Strongest mode it holds (granted) on what its waiters want; NULL when it holds none (a queued request). Rows recorded before blocks_as may name a mode it was queued for.';
