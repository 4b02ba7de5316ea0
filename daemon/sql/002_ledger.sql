-- 002_ledger: calls in progress and ended, and the append-only usage ledger.
-- Neither table has foreign keys to the routing tables: they record what happened, and a row
-- must never fail to land because a number or agent was deleted since.

CREATE TABLE calls (
	id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	provider          text NOT NULL CHECK (provider IN ('retell', 'vapi', 'bland')),
	provider_call_id  text NOT NULL,
	direction         text NOT NULL CHECK (direction IN ('inbound', 'outbound', 'unknown')),
	number_id         bigint NULL,
	e164              text NULL,
	agent_id          bigint NULL,
	agency_id         bigint NULL,  -- NULL: unattributed (a number the platform does not know)
	client_id         bigint NULL,
	provider_agent_id text NULL,
	from_number       text NULL,
	to_number         text NULL,
	status            text NOT NULL CHECK (status IN ('in_progress', 'ended')),
	connected         boolean NULL,
	started_at        timestamptz NULL,
	ended_at          timestamptz NULL,
	duration_ms       bigint NULL CHECK (duration_ms >= 0),
	end_reason        text NULL,
	agent_mismatch    boolean NOT NULL DEFAULT false,
	first_seen_at     timestamptz NOT NULL DEFAULT now(),
	updated_at        timestamptz NOT NULL DEFAULT now(),
	UNIQUE (provider, provider_call_id)
);
CREATE INDEX calls_in_progress ON calls (agency_id) WHERE status = 'in_progress';
CREATE INDEX calls_agency_started ON calls (agency_id, started_at);

CREATE TABLE usage_ledger (
	id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	provider            text NOT NULL CHECK (provider IN ('retell', 'vapi', 'bland')),
	provider_call_id    text NOT NULL,
	agency_id           bigint NOT NULL,
	client_id           bigint NULL,
	agent_id            bigint NULL,
	number_id           bigint NULL,
	direction           text NOT NULL CHECK (direction IN ('inbound', 'outbound', 'unknown')),
	started_at          timestamptz NULL,
	ended_at            timestamptz NULL,
	duration_ms         bigint NOT NULL CHECK (duration_ms >= 0),
	billed_seconds      bigint NOT NULL CHECK (billed_seconds >= 0),
	rate_micros_per_min bigint NOT NULL CHECK (rate_micros_per_min >= 0),
	amount_micros       bigint NOT NULL CHECK (amount_micros >= 0),
	recorded_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
	recorded_by         text NOT NULL,
	UNIQUE (provider, provider_call_id)
);
CREATE INDEX usage_ledger_agency_ended ON usage_ledger (agency_id, ended_at);

-- append-only: no UPDATE, DELETE or TRUNCATE, whoever asks
CREATE FUNCTION usage_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'usage_ledger is append-only: % is not allowed', TG_OP
		USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER usage_ledger_no_update BEFORE UPDATE OR DELETE ON usage_ledger
	FOR EACH ROW EXECUTE FUNCTION usage_ledger_append_only();
CREATE TRIGGER usage_ledger_no_truncate BEFORE TRUNCATE ON usage_ledger
	FOR EACH STATEMENT EXECUTE FUNCTION usage_ledger_append_only();
