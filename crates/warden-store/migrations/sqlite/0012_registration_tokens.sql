-- Registration tokens: a token lets up to `max_uses` people register (until it expires or is
-- revoked), each getting `roles` bound in `tenant`. Only the SHA-256 of the token is stored;
-- `uses_left` is decremented by one conditional update inside the registration's write.
CREATE TABLE registration_tokens (
    id BLOB PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    roles TEXT NOT NULL,
    max_uses INTEGER NOT NULL,
    uses_left INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    created_by BLOB
);
