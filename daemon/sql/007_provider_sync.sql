-- 007_provider_sync: purchases of unknown outcome (pending), sync notes, and agents that vanished.

-- A purchase whose outcome is unknown (the provider timed out, answered 5xx after it may have
-- acted, or Vapi answered "activating" without digits) is recorded 'pending', with whatever id
-- the provider gave (provider_number_id) and no digits yet; the provider sync (daemon/sync.c)
-- adopts it (it becomes 'active' with its digits) when the provider lists it, or marks it
-- 'failed' when the provider has no such number.  Neither routes: the route loader reads only
-- 'active' and 'released' rows.  Only a pending or failed row may lack its digits.
ALTER TABLE phone_numbers DROP CONSTRAINT phone_numbers_status_check;
ALTER TABLE phone_numbers ADD CONSTRAINT phone_numbers_status_check
	CHECK (status IN ('active', 'released', 'pending', 'failed'));
ALTER TABLE phone_numbers ALTER COLUMN e164 DROP NOT NULL;
ALTER TABLE phone_numbers ADD CONSTRAINT phone_numbers_e164_known
	CHECK (e164 IS NOT NULL OR status IN ('pending', 'failed'));

-- The agent a pending purchase asked for (POST /v1/numbers with agent_id): the sync assigns
-- the number to it when it adopts the purchase.  Only a pending row has one.
ALTER TABLE phone_numbers ADD COLUMN requested_agent_id bigint NULL;
ALTER TABLE phone_numbers ADD CONSTRAINT phone_numbers_requested_agent_fkey
	FOREIGN KEY (requested_agent_id, provider, agency_id) REFERENCES agents (id, provider, agency_id);
ALTER TABLE phone_numbers ADD CONSTRAINT phone_numbers_requested_agent_pending
	CHECK (requested_agent_id IS NULL OR status = 'pending');

-- What the daemon noted about the number at its provider: why it is pending or failed, or that
-- a forced release found it already gone there.  Shown as the number's provider_note.
ALTER TABLE phone_numbers ADD COLUMN provider_note text NULL
	CONSTRAINT phone_numbers_provider_note_length CHECK (length(provider_note) <= 500);

-- An agent the sync no longer finds at its provider is inactive: it takes no calls (its numbers
-- answer "no agent", as unassigned ones do) until the sync finds it again.
ALTER TABLE agents ADD COLUMN active boolean NOT NULL DEFAULT true;

CREATE INDEX phone_numbers_pending ON phone_numbers (account_id) WHERE status = 'pending';

-- The route loader reads an inactive agent's numbers as unassigned; a change of `active` touches
-- the agent's numbers so that the change feed names them and every daemon re-reads them.
CREATE FUNCTION callrouted_agent_active_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE phone_numbers SET agent_id = agent_id WHERE agent_id = NEW.id AND status = 'active';
	RETURN NULL;
END $$;

CREATE TRIGGER agents_active_touch AFTER UPDATE OF active ON agents
	FOR EACH ROW WHEN (OLD.active IS DISTINCT FROM NEW.active)
	EXECUTE FUNCTION callrouted_agent_active_touch();
