-- Hash keys of the vault's hubs and links: the one place each business key is spelled out.
-- Everything that writes or looks up a row calls these; none repeats the expression.
--
-- Each key has two forms: one over the business-key values, and one over the JSON object the
-- daemon sends for it (keys = the hub's column names, see CycleRecord.swift). Changing a key
-- here re-keys every future row and orphans history: don't, add a new hub instead.

CREATE OR REPLACE FUNCTION lock_monitoring.cluster_hk(p_sysid text)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT lock_monitoring.hash_key(p_sysid)
$fn$;
COMMENT ON FUNCTION lock_monitoring.cluster_hk(text) IS
    'Hash key of monitored_cluster_h: the cluster''s system_identifier.';

CREATE OR REPLACE FUNCTION lock_monitoring.tenant_hk(p_database_name text)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT lock_monitoring.hash_key(coalesce(p_database_name, ''))
$fn$;
COMMENT ON FUNCTION lock_monitoring.tenant_hk(text) IS
    'Tenant of a hub row: hash of the database name ('''' when unknown).';

CREATE OR REPLACE FUNCTION lock_monitoring.session_hk(p_sysid text, p_kind text, p_pid integer, p_start timestamptz, p_gid text)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT CASE WHEN p_kind = 'prepared'
                THEN lock_monitoring.hash_key(p_sysid, 'prepared', p_gid)
                ELSE lock_monitoring.hash_key(p_sysid, 'session', p_pid::text, lock_monitoring.bk_timestamp(p_start)) END
$fn$;
COMMENT ON FUNCTION lock_monitoring.session_hk(text, text, integer, timestamptz, text) IS
    'Hash key of blocking_session_h: (cluster, pid, backend_start) for sessions, (cluster, gid) for prepared transactions.';

CREATE OR REPLACE FUNCTION lock_monitoring.session_hk(p_sysid text, p_key jsonb)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    SELECT lock_monitoring.session_hk(p_sysid, p_key->>'session_kind', (p_key->>'session_pid')::integer,
                                      (p_key->>'session_start')::timestamptz, p_key->>'prepared_gid')
$fn$;
COMMENT ON FUNCTION lock_monitoring.session_hk(text, jsonb) IS
    'session_hk of a {session_kind, session_pid, session_start, prepared_gid} object.';

CREATE OR REPLACE FUNCTION lock_monitoring.lock_hk(p_sysid text, p_kind text, p_pid integer, p_start timestamptz, p_gid text,
                                                   p_lock_type text, p_database_oid oid, p_target_key text, p_mode text)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT lock_monitoring.hash_key(p_sysid, p_kind, p_pid::text, lock_monitoring.bk_timestamp(p_start), p_gid,
                                    p_lock_type, p_database_oid::text, p_target_key, p_mode)
$fn$;
COMMENT ON FUNCTION lock_monitoring.lock_hk(text, text, integer, timestamptz, text, text, oid, text, text) IS
    'Hash key of lock_activity_h: cluster, holder (kind, pid, backend_start or gid), lock type, database, target, mode.';

CREATE OR REPLACE FUNCTION lock_monitoring.lock_hk(p_sysid text, p_key jsonb)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    SELECT lock_monitoring.lock_hk(p_sysid, p_key->>'holder_kind', (p_key->>'session_pid')::integer, (p_key->>'session_start')::timestamptz,
                                   p_key->>'prepared_gid', p_key->>'lock_type', (p_key->>'database_oid')::oid, p_key->>'lock_target_key',
                                   p_key->>'lock_mode')
$fn$;
COMMENT ON FUNCTION lock_monitoring.lock_hk(text, jsonb) IS
    'lock_hk of a {holder_kind, session_pid, session_start, prepared_gid, lock_type, database_oid, lock_target_key, lock_mode} object.';

CREATE OR REPLACE FUNCTION lock_monitoring.lock_blocking_hk(p_lock_hk bytea, p_blocker_hk bytea)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT lock_monitoring.hash_key(encode(p_lock_hk, 'hex'), encode(p_blocker_hk, 'hex'))
$fn$;
COMMENT ON FUNCTION lock_monitoring.lock_blocking_hk(bytea, bytea) IS
    'Hash key of lock_blocking_l: the waiting lock and the blocker it waits for.';

-- A soft edge is a link of its own; a hard one keeps the key links had before kinds were told
-- apart, so history recorded then still joins.
CREATE OR REPLACE FUNCTION lock_monitoring.lock_blocking_hk(p_lock_hk bytea, p_blocker_hk bytea, p_block_kind text)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT CASE WHEN p_block_kind = 'soft'
                THEN lock_monitoring.hash_key(encode(p_lock_hk, 'hex'), encode(p_blocker_hk, 'hex'), 'soft')
                ELSE lock_monitoring.lock_blocking_hk(p_lock_hk, p_blocker_hk) END
$fn$;
COMMENT ON FUNCTION lock_monitoring.lock_blocking_hk(bytea, bytea, text) IS
    'Hash key of lock_blocking_l for an edge of a kind: soft edges (queued ahead) have a key of their own, hard ones the two-argument key.';

CREATE OR REPLACE FUNCTION lock_monitoring.deadlock_event_hk(p_sysid text, p_database_name text, p_event_key text)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT lock_monitoring.hash_key(p_sysid, p_database_name, p_event_key)
$fn$;
COMMENT ON FUNCTION lock_monitoring.deadlock_event_hk(text, text, text) IS
    'Hash key of deadlock_event_h: cluster, database, lockvault''s event key.';

CREATE OR REPLACE FUNCTION lock_monitoring.deadlock_event_hk(p_sysid text, p_key jsonb)
RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $fn$
    SELECT lock_monitoring.deadlock_event_hk(p_sysid, p_key->>'database_name', p_key->>'event_key')
$fn$;
COMMENT ON FUNCTION lock_monitoring.deadlock_event_hk(text, jsonb) IS
    'deadlock_event_hk of a {database_name, event_key} object.';

CREATE OR REPLACE FUNCTION lock_monitoring.deadlock_involvement_hk(p_event_hk bytea, p_pid integer)
RETURNS bytea LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT lock_monitoring.hash_key(encode(p_event_hk, 'hex'), p_pid::text)
$fn$;
COMMENT ON FUNCTION lock_monitoring.deadlock_involvement_hk(bytea, integer) IS
    'Hash key of deadlock_involvement_l: the deadlock event and the participant''s pid.';

GRANT EXECUTE ON FUNCTION lock_monitoring.cluster_hk(text), lock_monitoring.tenant_hk(text),
    lock_monitoring.session_hk(text, text, integer, timestamptz, text), lock_monitoring.session_hk(text, jsonb),
    lock_monitoring.lock_hk(text, text, integer, timestamptz, text, text, oid, text, text), lock_monitoring.lock_hk(text, jsonb),
    lock_monitoring.lock_blocking_hk(bytea, bytea), lock_monitoring.lock_blocking_hk(bytea, bytea, text), lock_monitoring.deadlock_event_hk(text, text, text), lock_monitoring.deadlock_event_hk(text, jsonb),
    lock_monitoring.deadlock_involvement_hk(bytea, integer)
    TO lock_writer_role, lock_monitoring_role;
