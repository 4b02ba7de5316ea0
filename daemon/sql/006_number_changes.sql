-- 006_number_changes: one change per number at a time (leases), idempotent POSTs, and the
-- append-only audit trail of every change to a number.

-- A change to a number (assign, unassign, rename, release through the admin API) holds the
-- number's lease from before it reads the number until its final write, which deletes the
-- lease in the same statement and only if it is still its own (compare-and-set on holder).  A
-- second change while the lease is held is refused (409 conflict), whichever daemon it reaches.
-- The lease is bounded (expires_at): a daemon that dies mid-change holds the number at most
-- that long; the next change then takes the lease over and records an 'interrupted' event.
-- No transaction is ever held open across a provider call.
CREATE TABLE number_change_leases (
	number_id   bigint PRIMARY KEY REFERENCES phone_numbers (id) ON DELETE CASCADE,
	holder      text NOT NULL CHECK (holder ~ '^[0-9a-f]{32}$'),
	instance    text NOT NULL,
	action      text NOT NULL CHECK (action IN ('change', 'release')),
	token_id    bigint NULL REFERENCES api_tokens (id), -- NULL: not a token's (the sync)
	acquired_at timestamptz NOT NULL DEFAULT now(),
	expires_at  timestamptz NOT NULL,
	CHECK (expires_at > acquired_at)
);

-- Idempotency-Key of POST /v1/numbers and POST /v1/calls, per agency.  A key is claimed
-- ('in_flight', until locked_until) before anything is done; the first answer is kept ('done':
-- status and body) when a request reached the provider, and the same key within 24 h gets that
-- answer again without a provider call.  A key whose request never reached the provider is
-- deleted, so the same key may be used again.  Rows past expires_at are deleted by the daemon
-- (and count as absent meanwhile).
CREATE TABLE idempotency_keys (
	agency_id      bigint NOT NULL REFERENCES agencies (id),
	key            text NOT NULL CHECK (key ~ '^[A-Za-z0-9._:~+/=-]{1,255}$'),
	route          text NOT NULL CHECK (route IN ('POST /v1/numbers', 'POST /v1/calls')),
	request_sha256 bytea NOT NULL CHECK (length(request_sha256) = 32),
	token_id       bigint NULL REFERENCES api_tokens (id),
	instance       text NOT NULL,
	state          text NOT NULL CHECK (state IN ('in_flight', 'done')),
	status         int NULL CHECK (status BETWEEN 100 AND 599),
	body           text NULL,
	created_at     timestamptz NOT NULL DEFAULT now(),
	locked_until   timestamptz NOT NULL,
	expires_at     timestamptz NOT NULL,
	PRIMARY KEY (agency_id, key),
	CHECK ((state = 'done') = (status IS NOT NULL AND body IS NOT NULL))
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

-- Every change to a number: through the API (actor 'token', with the token's id) or by the
-- provider sync (actor 'sync').  Append-only: the triggers below refuse UPDATE, DELETE and
-- TRUNCATE, for every role.  number_id has no foreign key on purpose: the history outlives a
-- number row deleted by hand.  action: the API writes buy, assign, unassign, rename, release
-- and interrupted; the sync may add its own (lower-case words).
CREATE TABLE number_events (
	id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	number_id           bigint NOT NULL,
	agency_id           bigint NOT NULL REFERENCES agencies (id),
	e164                text NULL,   -- NULL: a number without digits yet (a pending purchase)
	action              text NOT NULL CHECK (action ~ '^[a-z][a-z_]{0,31}$'),
	before_agent_id     bigint NULL,
	after_agent_id      bigint NULL,
	before_nickname     text NULL,
	after_nickname      text NULL,
	actor               text NOT NULL CHECK (actor IN ('token', 'sync')),
	token_id            bigint NULL REFERENCES api_tokens (id),
	instance            text NOT NULL,
	provider_request_id text NULL CHECK (length(provider_request_id) <= 200),
	detail              text NULL CHECK (length(detail) <= 1000),
	created_at          timestamptz NOT NULL DEFAULT now(),
	CHECK ((actor = 'token') = (token_id IS NOT NULL))
);
CREATE INDEX number_events_number ON number_events (number_id, id);

CREATE FUNCTION number_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'number_events is append-only: % refused', TG_OP
		USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER number_events_no_update BEFORE UPDATE OR DELETE ON number_events
	FOR EACH ROW EXECUTE FUNCTION number_events_append_only();
CREATE TRIGGER number_events_no_truncate BEFORE TRUNCATE ON number_events
	FOR EACH STATEMENT EXECUTE FUNCTION number_events_append_only();

-- One event of number p_number_id (its agency and digits taken from the number), for code that
-- is not the API's own final writes: the provider sync (p_token_id NULL: actor 'sync').
-- Returns the event's id, or NULL when there is no such number.
CREATE FUNCTION number_event_add(p_number_id bigint, p_action text, p_before_agent_id bigint,
	p_after_agent_id bigint, p_before_nickname text, p_after_nickname text, p_token_id bigint,
	p_instance text, p_provider_request_id text, p_detail text) RETURNS bigint
LANGUAGE sql AS $$
	INSERT INTO number_events (number_id, agency_id, e164, action, before_agent_id,
		after_agent_id, before_nickname, after_nickname, actor, token_id, instance,
		provider_request_id, detail)
	SELECT n.id, n.agency_id, n.e164, p_action, p_before_agent_id, p_after_agent_id,
		p_before_nickname, p_after_nickname,
		CASE WHEN p_token_id IS NULL THEN 'sync' ELSE 'token' END, p_token_id, p_instance,
		p_provider_request_id, p_detail
	FROM phone_numbers n WHERE n.id = p_number_id
	RETURNING id
$$;
