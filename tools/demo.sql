-- tools/demo.sql: demo data for tools/run (loaded once, into an empty database, in one transaction).
-- One agency with one account per provider, one client, one agent per provider and four numbers,
-- inserted in this order so their ids are fixed (the README's walk-through uses them):
--   agents  1 Retell Receptionist (client Acme Dental), 2 Vapi Scheduler (client Acme Dental),
--           3 Bland Intake (no client)
--   numbers 1 +14155559876 retell -> agent 1
--           2 +14155559877 vapi   -> agent 2 (with the sandbox, tools/run gives it the digits
--                                  the sandbox's Vapi picks, as Vapi does: +14155557001 first)
--           3 +14155559878 bland  -> agent 3
--           4 +14155559879 retell    unassigned: gets the "no agent" answer
-- The accounts have no api_base_url here: tools/run points them at the provider sandbox (or,
-- with --no-sandbox, leaves them on the real providers).
-- The secrets below are public demo values: never use them for a real provider account.

BEGIN;

INSERT INTO agencies (name) VALUES ('Demo Agency');

INSERT INTO provider_accounts (agency_id, provider, slug, api_key, webhook_secret, webhook_auth)
SELECT a.id, v.provider, v.slug, v.api_key, v.webhook_secret, v.webhook_auth
  FROM agencies a,
       (VALUES ('retell', 'demo-retell', 'demo-retell-key',    NULL,                NULL),
               ('vapi',   'demo-vapi',   'demo-vapi-api-key',  'demo-vapi-secret',  'hmac'),
               ('bland',  'demo-bland',  'demo-bland-api-key', 'demo-bland-secret', NULL))
         AS v (provider, slug, api_key, webhook_secret, webhook_auth)
 WHERE a.name = 'Demo Agency';
UPDATE provider_accounts SET webhook_credential_id = 'cred-demo-vapi' WHERE slug = 'demo-vapi';

INSERT INTO clients (agency_id, name, portal_agent_visibility)
SELECT id, 'Acme Dental', true FROM agencies WHERE name = 'Demo Agency';

INSERT INTO agents (agency_id, client_id, provider, provider_agent_id, name)
SELECT a.id, c.id, v.provider, v.provider_agent_id, v.name
  FROM agencies a
  JOIN (VALUES (1, 'retell', 'agent_demo_retell',                    'Retell Receptionist', true),
               (2, 'vapi',   'asst_demo_vapi',                       'Vapi Scheduler',      true),
               (3, 'bland',  '6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f', 'Bland Intake',        false))
         AS v (ord, provider, provider_agent_id, name, of_client) ON true
  LEFT JOIN clients c ON v.of_client AND c.agency_id = a.id AND c.name = 'Acme Dental'
 WHERE a.name = 'Demo Agency'
 ORDER BY v.ord;

INSERT INTO phone_numbers (agency_id, account_id, provider, e164, nickname, agent_id)
SELECT pa.agency_id, pa.id, pa.provider, v.e164, v.nickname, ag.id
  FROM (VALUES (1, 'demo-retell', '+14155559876', 'Acme front desk', 'agent_demo_retell'),
               (2, 'demo-vapi',   '+14155559877', 'Acme bookings',   'asst_demo_vapi'),
               (3, 'demo-bland',  '+14155559878', 'Intake line',     '6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f'),
               (4, 'demo-retell', '+14155559879', 'Spare',           NULL))
         AS v (ord, slug, e164, nickname, provider_agent_id)
  JOIN provider_accounts pa ON pa.slug = v.slug
  LEFT JOIN agents ag ON ag.provider = pa.provider AND ag.provider_agent_id = v.provider_agent_id
 ORDER BY v.ord;

COMMIT;
