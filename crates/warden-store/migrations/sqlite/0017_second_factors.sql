-- Second factors. A TOTP credential per account (its secret as base32: a TOTP check needs the
-- secret itself), usable once confirmed; `last_used_step` refuses a code's second use. Backup
-- codes are stored as SHA-256 only and used once. Failed second-factor attempts are counted
-- per account, and lock the second factor for a while on every node.
CREATE TABLE totp_credentials (
    account_id BLOB PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    digits INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    last_used_step BIGINT
);
CREATE TABLE backup_codes (
    id BLOB PRIMARY KEY,
    account_id BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    code_hash BLOB NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX backup_codes_account ON backup_codes (account_id);
CREATE TABLE second_factor_failures (
    account_id BLOB PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    failures INTEGER NOT NULL,
    window_start BIGINT NOT NULL,
    locked_until BIGINT
);
