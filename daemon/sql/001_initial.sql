-- 001_initial: agencies, provider accounts, clients, agents, phone numbers and the change feed.
-- These tables and columns are a contract with the agency dashboard, which writes them directly.
-- The business rules live here, so a dashboard bug cannot break them:
--   provider-specific: composite foreign keys over (id, provider, agency_id);
--   one number, one agent: agent_id is a single column; at most one active row per e164;
--   a released number has no agent.

CREATE TABLE agencies (
	id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name                text NOT NULL,
	rate_micros_per_min bigint NOT NULL DEFAULT 150000 CHECK (rate_micros_per_min >= 0),
	billing_initial_s   int NOT NULL DEFAULT 60 CHECK (billing_initial_s > 0),
	billing_increment_s int NOT NULL DEFAULT 60 CHECK (billing_increment_s > 0)
);

CREATE TABLE provider_accounts (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	agency_id      bigint NOT NULL REFERENCES agencies (id),
	provider       text NOT NULL CHECK (provider IN ('retell', 'vapi', 'bland')),
	slug           text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9_-]{1,64}$'),
	api_key        text NOT NULL,
	webhook_secret text NULL,
	webhook_auth   text NULL CHECK (webhook_auth IN ('hmac', 'bearer')),
	api_base_url   text NULL,
	UNIQUE (id, provider, agency_id)
);

CREATE TABLE clients (
	id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	agency_id               bigint NOT NULL REFERENCES agencies (id),
	name                    text NOT NULL,
	portal_agent_visibility boolean NOT NULL DEFAULT false,
	UNIQUE (id, agency_id)
);

CREATE TABLE agents (
	id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	agency_id         bigint NOT NULL REFERENCES agencies (id),
	client_id         bigint NULL,
	provider          text NOT NULL CHECK (provider IN ('retell', 'vapi', 'bland')),
	provider_agent_id text NOT NULL CHECK (length(provider_agent_id) BETWEEN 1 AND 128),
	name              text NOT NULL,
	UNIQUE (provider, provider_agent_id),
	UNIQUE (id, provider, agency_id),
	-- a client of the same agency
	FOREIGN KEY (client_id, agency_id) REFERENCES clients (id, agency_id)
);

CREATE TABLE phone_numbers (
	id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	agency_id          bigint NOT NULL REFERENCES agencies (id),
	account_id         bigint NOT NULL,
	provider           text NOT NULL CHECK (provider IN ('retell', 'vapi', 'bland')),
	e164               text NOT NULL CHECK (e164 ~ '^\+[1-9][0-9]{6,14}$'),
	provider_number_id text NULL,
	nickname           text NULL,
	agent_id           bigint NULL,
	status             text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'released')),
	created_at         timestamptz NOT NULL DEFAULT now(),
	released_at        timestamptz NULL,
	-- the account is of the same agency and provider
	FOREIGN KEY (account_id, provider, agency_id)
		REFERENCES provider_accounts (id, provider, agency_id),
	-- provider-specific: the agent is of the same agency and provider
	FOREIGN KEY (agent_id, provider, agency_id) REFERENCES agents (id, provider, agency_id),
	-- a released number has no agent
	CHECK (status = 'active' OR agent_id IS NULL),
	CHECK ((status = 'released') = (released_at IS NOT NULL))
);

-- at most one active row per number
CREATE UNIQUE INDEX phone_numbers_active_e164 ON phone_numbers (e164) WHERE status = 'active';
CREATE INDEX phone_numbers_e164 ON phone_numbers (e164);
CREATE INDEX phone_numbers_released_e164 ON phone_numbers (e164) WHERE status = 'released';
CREATE INDEX phone_numbers_agent ON phone_numbers (agent_id) WHERE agent_id IS NOT NULL;

-- Change feed: pg_notify('callrouted_changes', json).
-- Catalog tables send {"t":"<table>"}; the daemon re-reads its (small) catalog.
-- phone_numbers sends {"t":"phone_numbers","e164":[...]} naming every number a statement touched,
-- or {"t":"phone_numbers","all":true} when there are too many to name (the daemon reloads all).
CREATE FUNCTION callrouted_notify_catalog() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('callrouted_changes', json_build_object('t', TG_TABLE_NAME)::text);
	RETURN NULL;
END $$;

CREATE FUNCTION callrouted_notify_numbers() RETURNS trigger LANGUAGE plpgsql AS $$
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
		PERFORM pg_notify('callrouted_changes', '{"t":"phone_numbers","all":true}');
	ELSE
		PERFORM pg_notify('callrouted_changes',
			json_build_object('t', 'phone_numbers', 'e164', nums)::text);
	END IF;
	RETURN NULL;
END $$;

CREATE TRIGGER phone_numbers_notify_ins AFTER INSERT ON phone_numbers
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION callrouted_notify_numbers();
CREATE TRIGGER phone_numbers_notify_upd AFTER UPDATE ON phone_numbers
	REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION callrouted_notify_numbers();
CREATE TRIGGER phone_numbers_notify_del AFTER DELETE ON phone_numbers
	REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION callrouted_notify_numbers();
CREATE TRIGGER phone_numbers_notify_trunc AFTER TRUNCATE ON phone_numbers
	FOR EACH STATEMENT EXECUTE FUNCTION callrouted_notify_catalog();

CREATE TRIGGER agencies_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON agencies
	FOR EACH STATEMENT EXECUTE FUNCTION callrouted_notify_catalog();
CREATE TRIGGER provider_accounts_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON provider_accounts
	FOR EACH STATEMENT EXECUTE FUNCTION callrouted_notify_catalog();
CREATE TRIGGER clients_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON clients
	FOR EACH STATEMENT EXECUTE FUNCTION callrouted_notify_catalog();
CREATE TRIGGER agents_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON agents
	FOR EACH STATEMENT EXECUTE FUNCTION callrouted_notify_catalog();
