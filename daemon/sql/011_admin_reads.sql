-- 011_admin_reads: what the admin API's reads need at scale (issue 16).

-- GET /v1/numbers pages an agency's numbers by id (WHERE agency_id = $1 AND id > $after ORDER BY
-- id LIMIT n): with only (id, agency_id) PostgreSQL walked every agency's ids to find one's
-- (100 agencies: 100 index entries per row answered); this one reads the page's rows only.
CREATE INDEX phone_numbers_agency_id ON phone_numbers (agency_id, id);
-- GET /v1/numbers?e164=%2B1415: an agency's numbers of a prefix (the e164 index alone fetched
-- every agency's numbers of the prefix and kept one in a hundred).
CREATE INDEX phone_numbers_agency_e164 ON phone_numbers (agency_id, e164);

-- The admin API keeps the tokens it has checked for a short while (daemon/api_tokens.c); a
-- change to api_tokens (a revocation, a deletion) tells every daemon at its commit, and they
-- forget every kept token before they answer another request.
CREATE FUNCTION callrouted_notify_api_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('callrouted_api_tokens', '');
	RETURN NULL;
END $$;
CREATE TRIGGER api_tokens_notify AFTER UPDATE OR DELETE OR TRUNCATE ON api_tokens
	FOR EACH STATEMENT EXECUTE FUNCTION callrouted_notify_api_tokens();

-- An agency's page of numbers, as GET /v1/numbers answers it (no filter): planned once per
-- session (a generic plan: the one the index above serves whatever the arguments), where the
-- query itself, a prepared statement with LIMIT $n, was planned again at each request (its custom
-- plan always looked cheaper than the generic one): a fifth less of PostgreSQL's time
-- for a page (pgbench).  The times are UTC timestamps, the daemon writes them as ISO 8601.
CREATE FUNCTION callrouted_numbers_page(p_agency bigint, p_after bigint, p_limit bigint)
RETURNS TABLE (r_id bigint, r_e164 text, r_provider text, r_account text, r_nickname text,
	r_agent_id bigint, r_agent_name text, r_client_id bigint, r_client_name text, r_status text,
	r_created_at timestamp, r_released_at timestamp, r_provider_released boolean,
	r_provider_note text)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
	RETURN QUERY SELECT n.id, n.e164, n.provider, a.slug, n.nickname, n.agent_id, ag.name,
		ag.client_id, c.name, n.status, n.created_at AT TIME ZONE 'UTC',
		n.released_at AT TIME ZONE 'UTC', n.provider_released, n.provider_note
	FROM phone_numbers n JOIN provider_accounts a ON a.id = n.account_id
	LEFT JOIN agents ag ON ag.id = n.agent_id LEFT JOIN clients c ON c.id = ag.client_id
	WHERE n.agency_id = p_agency AND n.id > p_after ORDER BY n.id LIMIT p_limit;
END $$;


-- The same, of an e164 prefix: [p_lo, p_hi).  The daemon calls it for a narrow prefix only (6
-- digits or more: a few of the agency's numbers, sorted by id here), whose plan can be fixed:
-- the (agency_id, e164) range, fenced (OFFSET 0) so that the generic plan cannot walk the
-- agency's ids instead.  A broad prefix is planned for its value (that walk may then be cheaper).
CREATE FUNCTION callrouted_numbers_prefix(p_agency bigint, p_after bigint, p_limit bigint,
	p_lo text, p_hi text)
RETURNS TABLE (r_id bigint, r_e164 text, r_provider text, r_account text, r_nickname text,
	r_agent_id bigint, r_agent_name text, r_client_id bigint, r_client_name text, r_status text,
	r_created_at timestamp, r_released_at timestamp, r_provider_released boolean,
	r_provider_note text)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
	RETURN QUERY SELECT n.id, n.e164, n.provider, a.slug, n.nickname, n.agent_id, ag.name,
		ag.client_id, c.name, n.status, n.created_at AT TIME ZONE 'UTC',
		n.released_at AT TIME ZONE 'UTC', n.provider_released, n.provider_note
	FROM (SELECT p.id FROM phone_numbers p WHERE p.agency_id = p_agency AND p.e164 >= p_lo
		AND p.e164 < p_hi OFFSET 0) m
	JOIN phone_numbers n ON n.id = m.id JOIN provider_accounts a ON a.id = n.account_id
	LEFT JOIN agents ag ON ag.id = n.agent_id LEFT JOIN clients c ON c.id = ag.client_id
	WHERE n.id > p_after ORDER BY n.id LIMIT p_limit;
END $$;
