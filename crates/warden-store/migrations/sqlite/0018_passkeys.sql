-- Passkeys (WebAuthn). Each row is one registered credential of an account: its credential id
-- (what an authenticator names it by, unique across accounts), the name its owner gave it, and
-- the verifier's record of it as JSON (the public key, the signature counter and the backup
-- flags; nothing secret). `sign_count` repeats the counter so that a use can be taken only
-- if it moves the counter forward, in one conditional update.
CREATE TABLE passkeys (
    id BLOB PRIMARY KEY,
    account_id BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL UNIQUE,
    name TEXT NOT NULL,
    credential TEXT NOT NULL,
    sign_count BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX passkeys_account ON passkeys (account_id);
-- WebAuthn ceremonies in progress: the challenge and what the verifier needs to finish, held
-- here (never in the client) under the SHA-256 of the ceremony's key, for minutes. Finishing
-- deletes the row in the statement that reads it, so a challenge is answered once.
CREATE TABLE webauthn_ceremonies (
    key_hash BLOB PRIMARY KEY,
    kind TEXT NOT NULL,
    account_id BLOB REFERENCES accounts (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies (expires_at);
