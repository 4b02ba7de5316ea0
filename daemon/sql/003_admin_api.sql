-- 003_admin_api: tokens of the admin API, and what a release did at the provider.

-- Bearer tokens are stored as SHA-256 hashes; a token is scoped to an agency, or to one client
-- of an agency (the client portal: read-only).
CREATE TABLE api_tokens (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	token_sha256 bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
	agency_id    bigint NOT NULL REFERENCES agencies (id),
	client_id    bigint NULL,
	name         text NOT NULL DEFAULT '',
	created_at   timestamptz NOT NULL DEFAULT now(),
	revoked_at   timestamptz NULL,
	FOREIGN KEY (client_id, agency_id) REFERENCES clients (id, agency_id)
);

-- true: released at the provider; false: the provider has no API to release a number it sold
-- (Bland), so it was only unbound there and still has to be released in its dashboard.
ALTER TABLE phone_numbers ADD COLUMN provider_released boolean NULL;
