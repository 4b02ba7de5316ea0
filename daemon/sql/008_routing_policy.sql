-- 008_routing_policy: business hours, closed days, blocked callers, limits, caps, overflow, splits.
-- A contract with the agency dashboard (issue 13; README "Routing policy"): these names stay.
-- Same-agency rules are composite foreign keys, as for phone_numbers.agent_id; every table sends
-- {"t":"<table>"} on callrouted_changes like the catalog tables, and the daemon re-reads its
-- policies (daemon/policy_db.c).

-- An IANA zone PostgreSQL knows: pg_timezone_names lists the zones of its tz database, but
-- reads them all (some 30 ms a call), so the names it listed at migration are kept in
-- callrouted_timezones and asked first; a zone added by a later tzdata is found in the view.
CREATE TABLE callrouted_timezones (name text PRIMARY KEY);
INSERT INTO callrouted_timezones SELECT DISTINCT name FROM pg_timezone_names;

CREATE FUNCTION callrouted_timezone_valid(z text) RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
	IF EXISTS (SELECT 1 FROM callrouted_timezones WHERE name = z) THEN
		RETURN true;
	END IF;
	RETURN EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = z);
END $$;

ALTER TABLE agencies
	ADD COLUMN timezone text NOT NULL DEFAULT 'UTC'
		CONSTRAINT agencies_timezone_known CHECK (callrouted_timezone_valid(timezone)),
	ADD COLUMN monthly_spend_cap_micros bigint NULL
		CONSTRAINT agencies_monthly_spend_cap_micros_check CHECK (monthly_spend_cap_micros >= 0);

ALTER TABLE clients
	ADD COLUMN timezone text NOT NULL DEFAULT 'UTC'
		CONSTRAINT clients_timezone_known CHECK (callrouted_timezone_valid(timezone)),
	ADD COLUMN max_concurrent_calls int NULL
		CONSTRAINT clients_max_concurrent_calls_check CHECK (max_concurrent_calls > 0),
	ADD COLUMN reserved_inbound_calls int NOT NULL DEFAULT 0
		CONSTRAINT clients_reserved_inbound_calls_check CHECK (reserved_inbound_calls >= 0),
	ADD COLUMN monthly_spend_cap_micros bigint NULL
		CONSTRAINT clients_monthly_spend_cap_micros_check CHECK (monthly_spend_cap_micros >= 0);

-- Retell documents no refusal answer to its inbound webhook, and connects a number's bound
-- inbound agent when the answer names none: an account may name an agent of its own that
-- takes refused calls (it says the line is closed and hangs up), named in the refusal's
-- override_agent_id instead.
ALTER TABLE provider_accounts
	ADD COLUMN refusal_agent_id text NULL
		CONSTRAINT provider_accounts_refusal_agent_id_valid
		CHECK (refusal_agent_id IS NULL OR
		       (provider = 'retell' AND length(refusal_agent_id) BETWEEN 1 AND 128));

-- targets of the composite keys below
ALTER TABLE phone_numbers
	ADD CONSTRAINT phone_numbers_id_agency UNIQUE (id, agency_id),
	ADD CONSTRAINT phone_numbers_id_provider_agency UNIQUE (id, provider, agency_id),
	ADD COLUMN overflow_agent_id bigint NULL,
	-- the overflow agent is of the same agency and provider
	ADD CONSTRAINT phone_numbers_overflow_agent_fkey
		FOREIGN KEY (overflow_agent_id, provider, agency_id)
		REFERENCES agents (id, provider, agency_id);

CREATE TABLE business_hours (
	id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	agency_id bigint NOT NULL REFERENCES agencies (id),
	client_id bigint NULL,
	number_id bigint NULL,
	weekday   smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7), -- ISO: Monday = 1
	opens     time NOT NULL,
	closes    time NOT NULL,
	CHECK (opens < closes),
	CHECK ((client_id IS NULL) <> (number_id IS NULL)),
	FOREIGN KEY (client_id, agency_id) REFERENCES clients (id, agency_id) ON DELETE CASCADE,
	FOREIGN KEY (number_id, agency_id) REFERENCES phone_numbers (id, agency_id) ON DELETE CASCADE
);
CREATE INDEX business_hours_client ON business_hours (client_id) WHERE client_id IS NOT NULL;
CREATE INDEX business_hours_number ON business_hours (number_id) WHERE number_id IS NOT NULL;

-- closed all day in the zone; a number's own rows, else its client's, else the agency's (both
-- ids null)
CREATE TABLE closed_days (
	id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	agency_id bigint NOT NULL REFERENCES agencies (id),
	client_id bigint NULL,
	number_id bigint NULL,
	day       date NOT NULL,
	note      text NULL,
	CHECK (client_id IS NULL OR number_id IS NULL),
	FOREIGN KEY (client_id, agency_id) REFERENCES clients (id, agency_id) ON DELETE CASCADE,
	FOREIGN KEY (number_id, agency_id) REFERENCES phone_numbers (id, agency_id) ON DELETE CASCADE
);

-- a caller whose number starts with prefix is refused; both ids null: agency-wide
CREATE TABLE blocked_callers (
	id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	agency_id bigint NOT NULL REFERENCES agencies (id),
	client_id bigint NULL,
	number_id bigint NULL,
	prefix    text NOT NULL CHECK (prefix ~ '^\+[0-9]{1,15}$'),
	note      text NULL,
	CHECK (client_id IS NULL OR number_id IS NULL),
	FOREIGN KEY (client_id, agency_id) REFERENCES clients (id, agency_id) ON DELETE CASCADE,
	FOREIGN KEY (number_id, agency_id) REFERENCES phone_numbers (id, agency_id) ON DELETE CASCADE
);

-- The contract's columns are (number_id, agent_id, weight); agency and provider are copied from
-- the number by a trigger so that the composite keys can hold the same-agency-and-provider rule
-- (the dashboard does not write them).
CREATE TABLE number_agent_splits (
	number_id bigint NOT NULL,
	agent_id  bigint NOT NULL,
	weight    int NOT NULL CHECK (weight BETWEEN 1 AND 1000),
	agency_id bigint NOT NULL,
	provider  text NOT NULL,
	PRIMARY KEY (number_id, agent_id),
	FOREIGN KEY (number_id, provider, agency_id)
		REFERENCES phone_numbers (id, provider, agency_id) ON DELETE CASCADE,
	FOREIGN KEY (agent_id, provider, agency_id) REFERENCES agents (id, provider, agency_id)
);

CREATE FUNCTION callrouted_splits_fill() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	SELECT agency_id, provider INTO NEW.agency_id, NEW.provider
		FROM phone_numbers WHERE id = NEW.number_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'number_agent_splits: no phone number %', NEW.number_id
			USING ERRCODE = 'foreign_key_violation';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER number_agent_splits_fill BEFORE INSERT OR UPDATE ON number_agent_splits
	FOR EACH ROW EXECUTE FUNCTION callrouted_splits_fill();

-- Month-to-date spend, per client and per agency, in the calendar month of its own zone (of the
-- call's start, else its end): kept
-- by a statement trigger on usage_ledger, so in the very statement that inserts ledger rows
-- (the drain's, and ledger_rejects_replay's); exact and shared by every daemon.
CREATE TABLE route_spend_monthly (
	scope         text NOT NULL CHECK (scope IN ('agency', 'client')),
	id            bigint NOT NULL,
	month         date NOT NULL,
	amount_micros bigint NOT NULL DEFAULT 0,
	updated_at    timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (scope, id, month)
);

CREATE FUNCTION callrouted_spend_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO route_spend_monthly AS s (scope, id, month, amount_micros)
	SELECT 'agency', n.agency_id,
		date_trunc('month', coalesce(n.started_at, n.ended_at, n.recorded_at) AT TIME ZONE a.timezone)::date, sum(n.amount_micros)
	FROM new_rows n JOIN agencies a ON a.id = n.agency_id
	GROUP BY 1, 2, 3
	ON CONFLICT (scope, id, month) DO UPDATE
		SET amount_micros = s.amount_micros + EXCLUDED.amount_micros, updated_at = now();
	INSERT INTO route_spend_monthly AS s (scope, id, month, amount_micros)
	SELECT 'client', n.client_id,
		date_trunc('month', coalesce(n.started_at, n.ended_at, n.recorded_at) AT TIME ZONE c.timezone)::date, sum(n.amount_micros)
	FROM new_rows n JOIN clients c ON c.id = n.client_id
	GROUP BY 1, 2, 3
	ON CONFLICT (scope, id, month) DO UPDATE
		SET amount_micros = s.amount_micros + EXCLUDED.amount_micros, updated_at = now();
	RETURN NULL;
END $$;
CREATE TRIGGER usage_ledger_spend AFTER INSERT ON usage_ledger
	REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION callrouted_spend_add();

-- what was billed before this migration counts too
INSERT INTO route_spend_monthly (scope, id, month, amount_micros)
SELECT 'agency', u.agency_id, date_trunc('month', coalesce(u.started_at, u.ended_at, u.recorded_at) AT TIME ZONE a.timezone)::date,
	sum(u.amount_micros)
FROM usage_ledger u JOIN agencies a ON a.id = u.agency_id GROUP BY 1, 2, 3;
INSERT INTO route_spend_monthly (scope, id, month, amount_micros)
SELECT 'client', u.client_id, date_trunc('month', coalesce(u.started_at, u.ended_at, u.recorded_at) AT TIME ZONE c.timezone)::date,
	sum(u.amount_micros)
FROM usage_ledger u JOIN clients c ON c.id = u.client_id GROUP BY 1, 2, 3;

-- the concurrency count per client (refreshed every second by each daemon)
CREATE INDEX calls_in_progress_client ON calls (client_id) WHERE status = 'in_progress';

CREATE TRIGGER business_hours_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON business_hours
	FOR EACH STATEMENT EXECUTE FUNCTION callrouted_notify_catalog();
CREATE TRIGGER closed_days_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON closed_days
	FOR EACH STATEMENT EXECUTE FUNCTION callrouted_notify_catalog();
CREATE TRIGGER blocked_callers_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON blocked_callers
	FOR EACH STATEMENT EXECUTE FUNCTION callrouted_notify_catalog();
CREATE TRIGGER number_agent_splits_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON number_agent_splits FOR EACH STATEMENT EXECUTE FUNCTION callrouted_notify_catalog();

-- An overflow agent set, changed or cleared sends {"t":"phone_numbers_overflow"} (once per
-- transaction: PostgreSQL folds identical notifications), so that the policies are not re-read
-- on every other change of phone_numbers (those keep their own {"t":"phone_numbers",...}).
CREATE FUNCTION callrouted_notify_overflow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('callrouted_changes', '{"t":"phone_numbers_overflow"}');
	RETURN NULL;
END $$;
CREATE TRIGGER phone_numbers_overflow_ins AFTER INSERT ON phone_numbers FOR EACH ROW
	WHEN (NEW.overflow_agent_id IS NOT NULL) EXECUTE FUNCTION callrouted_notify_overflow();
CREATE TRIGGER phone_numbers_overflow_upd AFTER UPDATE ON phone_numbers FOR EACH ROW
	WHEN (OLD.overflow_agent_id IS DISTINCT FROM NEW.overflow_agent_id
	      OR (NEW.overflow_agent_id IS NOT NULL AND OLD.status IS DISTINCT FROM NEW.status))
	EXECUTE FUNCTION callrouted_notify_overflow();
