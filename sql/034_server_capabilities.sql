-- Migration 034: what the server the vault lives on can do, asked in one place. Where a function,
-- a view or a later migration does something only some PostgreSQL majors can (GRANT MAINTAIN,
-- from 17), it asks lock_monitoring.server_has('maintain') instead of comparing
-- server_version_num itself. The list is the one ServerCapabilities has
-- (Sources/LockvaultCore/ServerCapabilities.swift): the same names, the same first versions;
-- ServerCapabilitiesLiveTests compares the two. A new major that changes something lockvault
-- uses: a case there, and a new numbered migration that replaces server_capabilities() with the
-- row added (this one, once applied, is never edited).

CREATE OR REPLACE FUNCTION lock_monitoring.server_capabilities()
RETURNS TABLE (capability text, since integer, present boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $fn$
    SELECT c.capability, c.since, current_setting('server_version_num')::int >= c.since
    FROM (VALUES ('waitstart', 140000), ('query_id', 140000),
                 ('jsonlog', 150000), ('stat_force_next_flush', 150000),
                 ('createrole_needs_admin_option', 160000),
                 ('maintain', 170000), ('transaction_timeout', 170000)) AS c(capability, since)
$fn$;
COMMENT ON FUNCTION lock_monitoring.server_capabilities() IS
    'What PostgreSQL majors differ in that lockvault uses: each capability, the server_version_num of the first release with it, and whether this server has it.';

CREATE OR REPLACE FUNCTION lock_monitoring.server_has(p_capability text)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $fn$
DECLARE
    v_present boolean;
BEGIN
    SELECT c.present INTO v_present FROM lock_monitoring.server_capabilities() c WHERE c.capability = p_capability;
    IF NOT FOUND THEN
        -- A misspelt name must not read as "this server lacks it".
        RAISE EXCEPTION 'lock_monitoring.server_has: unknown capability "%"', p_capability
            USING ERRCODE = 'invalid_parameter_value', HINT = 'SELECT capability FROM lock_monitoring.server_capabilities()';
    END IF;
    RETURN v_present;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.server_has(text) IS
    'Whether this server has the capability (a name from server_capabilities(), e.g. ''maintain''); an unknown name is an error.';
