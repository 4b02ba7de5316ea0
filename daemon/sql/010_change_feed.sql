-- 010_change_feed: a change feed a hot standby can serve: a generation counter and a change log.

-- NOTIFY does not reach a standby (LISTEN is refused there; notifications are not WAL-logged).
-- So every change to the routing tables is also written down, in the same transaction:
--   callrouted_change_generation  one row, bumped by each change: the row lock is held to the
--                                 end of the transaction, so generation order = commit order;
--   callrouted_change_log         what changed at each generation: the payload the trigger
--                                 also sends by NOTIFY (now with "g", the generation).
-- A daemon reading routes from a standby (routes_database_url) keeps one LISTEN on the primary
-- as a doorbell, waits until the standby has replayed the generation it names, and reads
-- callrouted_change_log there.  The log keeps the last 10000 generations; a reader further
-- behind reloads everything.  Writers of the routing tables serialise on the counter row until
-- they commit (the dashboard's writes are few; a bulk load is one statement).
CREATE TABLE callrouted_change_generation (
	one boolean PRIMARY KEY DEFAULT true CHECK (one),
	generation bigint NOT NULL
);
INSERT INTO callrouted_change_generation (one, generation) VALUES (true, 0);

CREATE TABLE callrouted_change_log (
	generation bigint PRIMARY KEY,
	payload jsonb NOT NULL,
	changed_at timestamptz NOT NULL DEFAULT now()
);

-- Record a change (payload: {"t":"<table>", ...} as the daemon reads notifications): bump the
-- generation, log it, notify with "g" added.  Any trigger of a table the route loader reads
-- calls this instead of pg_notify.
CREATE FUNCTION callrouted_change(payload jsonb) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	g bigint;
BEGIN
	UPDATE callrouted_change_generation SET generation = generation + 1 RETURNING generation INTO g;
	INSERT INTO callrouted_change_log (generation, payload) VALUES (g, payload);
	DELETE FROM callrouted_change_log WHERE generation <= g - 10000;
	PERFORM pg_notify('callrouted_changes', (payload || jsonb_build_object('g', g))::text);
	RETURN g;
END $$;

-- The shared change generation (the same for every daemon of the database): what a daemon's
-- route table is at once it has applied every change (callrouted_routes_change_generation).
CREATE FUNCTION callrouted_change_generation() RETURNS bigint LANGUAGE sql STABLE AS $$
	SELECT generation FROM callrouted_change_generation
$$;

CREATE OR REPLACE FUNCTION callrouted_notify_catalog() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM callrouted_change(jsonb_build_object('t', TG_TABLE_NAME));
	RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION callrouted_notify_numbers() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	nums text[];
BEGIN
	IF TG_OP = 'INSERT' THEN
		SELECT array_agg(DISTINCT e164) INTO nums FROM new_rows;
	ELSIF TG_OP = 'DELETE' THEN
		SELECT array_agg(DISTINCT e164) INTO nums FROM old_rows;
	ELSE
		SELECT array_agg(DISTINCT e164) INTO nums
		  FROM (SELECT e164 FROM new_rows UNION SELECT e164 FROM old_rows) s;
	END IF;
	IF nums IS NULL THEN
		RETURN NULL;
	END IF;
	IF cardinality(nums) > 200 THEN
		PERFORM callrouted_change('{"t":"phone_numbers","all":true}'::jsonb);
	ELSE
		PERFORM callrouted_change(jsonb_build_object('t', 'phone_numbers', 'e164', nums));
	END IF;
	RETURN NULL;
END $$;
