-- Migration 021: what fleet_dashboard shows of each daemon (sql/views/fleet_dashboard.sql):
-- its version and its vault buffer, carried by its cycle summary. Rows written before this
-- migration have NULL.

ALTER TABLE lock_monitoring.monitor_cycle_s ADD COLUMN IF NOT EXISTS daemon_version text;
ALTER TABLE lock_monitoring.monitor_cycle_s ADD COLUMN IF NOT EXISTS buffered_cycles integer;
ALTER TABLE lock_monitoring.monitor_cycle_s ADD COLUMN IF NOT EXISTS spooled_cycles integer;
COMMENT ON COLUMN lock_monitoring.monitor_cycle_s.daemon_version IS 'Version of the lockvault that wrote the row (lockvault --version); NULL for rows written before lockvault recorded it.';
COMMENT ON COLUMN lock_monitoring.monitor_cycle_s.buffered_cycles IS
    'Cycle records the daemon held in memory for the vault when it built this one (0 = nothing waiting; > 0 = it was catching up after the vault was away).';
COMMENT ON COLUMN lock_monitoring.monitor_cycle_s.spooled_cycles IS 'Of those, how many its spool (vault.spool_directory) held on disk.';
