-- lockvault vault, migration 001: schema and the hash-key rule.
--
-- Runs as a non-superuser owner with CREATE on the database. The vault's roles
-- (lock_monitoring_role, lock_admin_role, lock_writer_role) are not created here: they are
-- cluster-wide, and `lockvault migrate` makes sure of them in a step of their own before any
-- migration runs (LockvaultCore.VaultRoles), so an owner without CREATEROLE can migrate once
-- they exist.

CREATE SCHEMA IF NOT EXISTS lock_monitoring;
COMMENT ON SCHEMA lock_monitoring IS
    'lockvault: lock and blocking history of monitored PostgreSQL clusters, as a Data Vault 2.0 model. Read the *_dashboard views.';

-- Hash keys and hash diffs: SHA-256 over the parts, each NULL written as the two characters
-- \N, otherwise with "\" escaped as "\\" and ";" as "\;", joined by ";". No case folding or
-- trimming: values are machine-generated and "Orders" is not "orders". The Swift twin is
-- LockvaultCore.VaultHash; a live test proves both give the same bytes.
CREATE OR REPLACE FUNCTION lock_monitoring.hash_key(VARIADIC parts text[])
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$
    SELECT sha256(convert_to(coalesce(array_to_string(ARRAY(
        SELECT CASE WHEN p IS NULL THEN '\N' ELSE replace(replace(p, '\', '\\'), ';', '\;') END
        FROM unnest(parts) WITH ORDINALITY AS u(p, i)
        ORDER BY i), ';'), ''), 'UTF8'))
$fn$;
COMMENT ON FUNCTION lock_monitoring.hash_key(text[]) IS
    'Data Vault hash key / hash diff: sha256 of the parts joined by ";" (NULL -> \N; "\" -> "\\"; ";" -> "\;"). Same bytes as lockvault''s Swift VaultHash.';

-- Timestamps inside business keys: always UTC, microseconds, one fixed format.
CREATE OR REPLACE FUNCTION lock_monitoring.bk_timestamp(ts timestamptz)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $fn$ SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $fn$;
COMMENT ON FUNCTION lock_monitoring.bk_timestamp(timestamptz) IS
    'Canonical text of a timestamp in business keys: UTC, YYYY-MM-DDTHH:MI:SS.ffffffZ.';

-- The monitored clusters: every hub row below carries the cluster's system_identifier, so
-- many clusters can write into one vault without their pids or OIDs colliding.
CREATE TABLE IF NOT EXISTS lock_monitoring.monitored_cluster_h (
    cluster_hk        bytea PRIMARY KEY,
    system_identifier text NOT NULL UNIQUE,
    load_date         timestamptz NOT NULL,
    record_source     text NOT NULL
);
COMMENT ON TABLE lock_monitoring.monitored_cluster_h IS 'Hub: one row per monitored PostgreSQL cluster (added by lockvault: a vault may hold many clusters).';
COMMENT ON COLUMN lock_monitoring.monitored_cluster_h.system_identifier IS 'pg_control_system().system_identifier of the monitored cluster.';
COMMENT ON COLUMN lock_monitoring.monitored_cluster_h.record_source IS 'lockvault@<host>/<cluster name> that first recorded it.';
