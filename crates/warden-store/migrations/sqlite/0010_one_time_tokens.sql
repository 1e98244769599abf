-- One-time tokens (recovery links; later registration and invitation links): only the
-- SHA-256 of the token is stored, and a token is consumed by one conditional update.
CREATE TABLE one_time_tokens (
    id BLOB PRIMARY KEY,
    purpose TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    account_id BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT,
    issued_by BLOB
);
CREATE INDEX one_time_tokens_account ON one_time_tokens (account_id, purpose);
