-- 004_billing_limits: what the database accepts, the daemon can bill; records it refused kept.

-- Agency plans within rating.c's limits (RATING_MAX_RATE_MICROS_PER_MIN, RATING_MAX_INCREMENT_S):
-- a plan outside them would be answered, attributed and billed to no one.  Rows already outside
-- stop the migration with their ids, so the operator fixes them first (nothing is changed).
DO $$
DECLARE
	bad text;
BEGIN
	SELECT string_agg(id::text, ', ' ORDER BY id) INTO bad FROM agencies
	WHERE rate_micros_per_min NOT BETWEEN 0 AND 100000000
	   OR billing_initial_s NOT BETWEEN 1 AND 3600
	   OR billing_increment_s NOT BETWEEN 1 AND 3600;
	IF bad IS NOT NULL THEN
		RAISE EXCEPTION 'agencies % have a plan the daemon cannot bill (rate_micros_per_min must be 0 to 100000000, billing_initial_s and billing_increment_s 1 to 3600): fix them (UPDATE agencies SET ... WHERE id IN (%)) and run --migrate again', bad, bad
			USING ERRCODE = 'check_violation';
	END IF;
END $$;

ALTER TABLE agencies
	ADD CONSTRAINT agencies_rate_billable
		CHECK (rate_micros_per_min BETWEEN 0 AND 100000000),
	ADD CONSTRAINT agencies_initial_billable
		CHECK (billing_initial_s BETWEEN 1 AND 3600),
	ADD CONSTRAINT agencies_increment_billable
		CHECK (billing_increment_s BETWEEN 1 AND 3600);

-- Journal records PostgreSQL refused for their data (SQLSTATE class 22 or 23) at drain, kept
-- before the journal's checkpoint moves past them: the record as journaled (JSON text), why,
-- and who.  An operator replays one after fixing the cause (README, "Usage ledger").
CREATE TABLE ledger_rejects (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	record      text NOT NULL,
	sqlstate    text NOT NULL,
	message     text NOT NULL,
	instance    text NOT NULL,
	journal_seq bigint NULL,
	rejected_at timestamptz NOT NULL DEFAULT now(),
	replayed_at timestamptz NULL
);

-- A later end event of a billed call with another duration: the first stays billed (the
-- ledger is append-only; calls.duration_ms keeps it too), the other is recorded here.
ALTER TABLE calls ADD COLUMN duration_disagreement_ms bigint NULL;

-- Replay one kept record once its cause is fixed: the same upsert of calls and insert of
-- usage_ledger the drain makes (ON CONFLICT: a row already there stays), then replayed_at.
-- Raises the database's error again if the cause is still there (nothing changes then).
-- Returns 'billed' (a usage_ledger row was added), 'recorded' (calls only) or 'already replayed'.
CREATE FUNCTION ledger_rejects_replay(reject_id bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	r jsonb;
	done timestamptz;
	who text;
	billed bigint;
BEGIN
	SELECT record::jsonb, replayed_at, instance INTO r, done, who
		FROM ledger_rejects WHERE id = reject_id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'ledger_rejects has no row %', reject_id USING ERRCODE = 'no_data_found';
	END IF;
	IF done IS NOT NULL THEN
		RETURN 'already replayed';
	END IF;
	INSERT INTO calls AS x (provider, provider_call_id, direction, number_id, e164, agent_id,
		agency_id, client_id, provider_agent_id, from_number, to_number, status, connected,
		started_at, ended_at, duration_ms, end_reason, agent_mismatch)
	VALUES (r->>'p', r->>'id', r->>'d', (r->>'n')::bigint, r->>'num', (r->>'a')::bigint,
		(r->>'ag')::bigint, (r->>'cl')::bigint, r->>'pa', r->>'from', r->>'to',
		CASE WHEN r->>'k' = 'end' THEN 'ended' ELSE 'in_progress' END,
		CASE WHEN r->>'k' = 'end' THEN (r->>'c')::boolean END,
		to_timestamp((r->>'st')::bigint / 1000.0),
		CASE WHEN r->>'k' = 'end' THEN to_timestamp(coalesce((r->>'en')::bigint,
			(r->>'st')::bigint + (r->>'dur')::bigint, (r->>'at')::bigint) / 1000.0) END,
		CASE WHEN (r->>'r')::boolean THEN (r->>'dur')::bigint END, r->>'why',
		coalesce((r->>'mm')::boolean, false))
	ON CONFLICT (provider, provider_call_id) DO UPDATE SET
		status = CASE WHEN x.status = 'ended' OR EXCLUDED.status = 'ended'
			THEN 'ended' ELSE 'in_progress' END,
		connected = coalesce(x.connected, EXCLUDED.connected),
		started_at = coalesce(x.started_at, EXCLUDED.started_at),
		ended_at = coalesce(x.ended_at, EXCLUDED.ended_at),
		duration_ms = coalesce(x.duration_ms, EXCLUDED.duration_ms),
		end_reason = coalesce(x.end_reason, EXCLUDED.end_reason),
		updated_at = now();
	INSERT INTO usage_ledger (provider, provider_call_id, agency_id, client_id, agent_id,
		number_id, direction, started_at, ended_at, duration_ms, billed_seconds,
		rate_micros_per_min, amount_micros, recorded_by)
	SELECT r->>'p', r->>'id', (r->>'ag')::bigint, (r->>'cl')::bigint, (r->>'a')::bigint,
		(r->>'n')::bigint, r->>'d', to_timestamp((r->>'st')::bigint / 1000.0),
		to_timestamp(coalesce((r->>'en')::bigint, (r->>'st')::bigint + (r->>'dur')::bigint,
			(r->>'at')::bigint) / 1000.0),
		(r->>'dur')::bigint, (r->>'bs')::bigint, (r->>'rate')::bigint, (r->>'amt')::bigint,
		'replay:' || who
	WHERE r->>'k' = 'end' AND (r->>'r')::boolean AND (r->>'c')::boolean
		AND r->>'ag' IS NOT NULL AND (r->>'bs')::bigint > 0
	ON CONFLICT (provider, provider_call_id) DO NOTHING;
	GET DIAGNOSTICS billed = ROW_COUNT;
	UPDATE ledger_rejects SET replayed_at = now() WHERE id = reject_id;
	RETURN CASE WHEN billed > 0 THEN 'billed' ELSE 'recorded' END;
END $$;
