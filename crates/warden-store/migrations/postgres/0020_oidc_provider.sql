-- The OpenID Connect provider's state.
--
-- Signing keys: `private_key` is sealed (AES-256-GCM with the key-encryption key from
-- configuration or the host; nonce first, the key id as associated data), never stored in the
-- clear. A key signs until it is retired and stays published until its tokens have expired.
CREATE TABLE oidc_keys (
    id TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

-- A grant: one redeemed authorization code, bound to the browser session that signed in. Its
-- access tokens and refresh tokens live while the grant is not revoked, the session exists and
-- neither has expired. `code_hash` (SHA-256 of the code) is unique: a code is redeemed once,
-- and a second redemption finds the grant of the first. No foreign key to the session: ending
-- a session deletes its row, which is what ends the grant.
CREATE TABLE oidc_grants (
    id UUID PRIMARY KEY,
    client_id UUID NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    account_id UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    session_id UUID NOT NULL,
    code_hash BYTEA NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    auth_strength TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX oidc_grants_session ON oidc_grants (session_id);

-- Refresh tokens, by their SHA-256. Redeeming one spends it (`used_at`) and adds the next;
-- a spent one presented again revokes its grant.
CREATE TABLE oidc_refresh_tokens (
    token_hash BYTEA PRIMARY KEY,
    grant_id UUID NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX oidc_refresh_tokens_grant ON oidc_refresh_tokens (grant_id);

-- What a person allowed a client: the scopes, as a JSON array.
CREATE TABLE oidc_consents (
    account_id UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    client_id UUID NOT NULL REFERENCES oidc_clients (id) ON DELETE CASCADE,
    scopes TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, client_id)
);
