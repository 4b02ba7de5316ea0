-- 005_vapi_credential: the Vapi webhook credential an account's numbers are signed with.

-- Vapi signs its requests to a number's server URL with the credential named by the number's
-- server.credentialId (a credential made in Vapi's dashboard, "Custom Credential": HMAC or
-- bearer, holding the account's webhook_secret).  Without one Vapi's requests are unsigned and
-- the daemon refuses them.  Every /phone-number create and update the daemon sends names this
-- credential.  Only Vapi accounts have one.
ALTER TABLE provider_accounts
	ADD COLUMN webhook_credential_id text NULL
		CONSTRAINT provider_accounts_webhook_credential_id_valid
		CHECK (webhook_credential_id IS NULL OR
		       (provider = 'vapi' AND webhook_credential_id ~ '^[A-Za-z0-9._-]{1,127}$'));
