-- "Which job does this to us every week?": blocking episodes grouped by their root's
-- application, user and query — the server's query_id where it computes one, else the query
-- text normalised (literals and numbers as ?, whitespace folded, lower case) — most
-- session-seconds caused first.

CREATE OR REPLACE FUNCTION lock_monitoring.normalised_query(p_query text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
    SELECT left(btrim(regexp_replace(regexp_replace(regexp_replace(lower(p_query), '''(?:[^'']|'''')*''', '?', 'g'),
                                                    '\m\d+(\.\d+)?\M', '?', 'g'), '\s+', ' ', 'g')), 500)
$fn$;
COMMENT ON FUNCTION lock_monitoring.normalised_query(text) IS
    'A query''s text with string literals and numbers as ?, whitespace folded, lower case, at most 500 characters: one key for every run of the same statement (top_blockers, when the server computes no query_id).';

CREATE OR REPLACE FUNCTION lock_monitoring.top_blockers(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (root_application_name text, root_user_name text, query_key text, sample_query text, episodes bigint,
               wait_seconds_total double precision, longest_wait_seconds double precision, ended_by jsonb)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, lock_monitoring
AS $fn$
#variable_conflict use_column
BEGIN
    IF p_from IS NULL OR p_to IS NULL OR p_from > p_to THEN
        RAISE EXCEPTION 'top_blockers: p_from (%) must be a time no later than p_to (%)', p_from, p_to USING ERRCODE = '22023';
    END IF;
    RETURN QUERY
    WITH ep AS (
        SELECT coalesce(st.root_application_name, en.root_application_name, '') AS app,
               coalesce(st.root_user_name, en.root_user_name, '') AS usr,
               coalesce(coalesce(st.root_query_id, en.root_query_id)::text,
                        normalised_query(coalesce(st.root_query, en.root_query, coalesce('prepared transaction ' || coalesce(st.root_gid, en.root_gid), '')))) AS qkey,
               coalesce(st.root_query, en.root_query) AS query,
               h.started_at,
               coalesce(en.wait_seconds_total, st.wait_seconds_total) AS ws,
               coalesce(en.longest_wait_seconds, st.longest_wait_seconds) AS longest,
               coalesce(en.ended_by, 'open') AS how
        FROM blocking_episode_h h
        LEFT JOIN blocking_episode_s st ON st.episode_hk = h.episode_hk AND st.started_at = h.started_at AND st.phase = 'started'
        LEFT JOIN blocking_episode_s en ON en.episode_hk = h.episode_hk AND en.started_at = h.started_at AND en.phase = 'ended'
        WHERE h.started_at >= p_from AND h.started_at < p_to AND (st.episode_hk IS NOT NULL OR en.episode_hk IS NOT NULL)
    ),
    by_end AS (
        SELECT ep.app, ep.usr, ep.qkey, ep.how, count(*) AS n, sum(ep.ws) AS ws, max(ep.longest) AS longest,
               (array_agg(ep.query ORDER BY ep.started_at DESC))[1] AS query, max(ep.started_at) AS latest
        FROM ep GROUP BY 1, 2, 3, 4
    )
    SELECT b.app, b.usr, b.qkey, left((array_agg(b.query ORDER BY b.latest DESC))[1], 1000), sum(b.n)::bigint, sum(b.ws)::float8,
           max(b.longest)::float8, jsonb_object_agg(b.how, b.n)
    FROM by_end b
    GROUP BY 1, 2, 3
    ORDER BY 6 DESC, 5 DESC, 1, 2, 3;
END
$fn$;
COMMENT ON FUNCTION lock_monitoring.top_blockers(timestamptz, timestamptz) IS
    'Blocking episodes that started in [p_from, p_to), grouped by the root''s application, user and query (query_key: query_id as text where the server computes one, else normalised_query of its text): episodes, session-seconds of waiting caused, the longest wait, and how they ended ({ended_by: count}; open ones as "open"). Most wait-seconds first: which job does this to us every week.';
REVOKE ALL ON FUNCTION lock_monitoring.top_blockers(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lock_monitoring.top_blockers(timestamptz, timestamptz) TO lock_monitoring_role, lock_writer_role;
