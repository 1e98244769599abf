-- Warden directory schema, SQLite flavour. Timestamps are unix milliseconds (UTC).

CREATE TABLE revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    value BIGINT NOT NULL
);
INSERT INTO revision (id, value) VALUES (1, 0);

CREATE TABLE groups (
    id BLOB PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE accounts (
    id BLOB PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'service_account')),
    name TEXT NOT NULL UNIQUE,
    profile TEXT NOT NULL DEFAULT '{}',
    description TEXT,
    manager_account_id BLOB REFERENCES accounts (id) ON DELETE SET NULL,
    manager_group_id BLOB REFERENCES groups (id) ON DELETE SET NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    valid_from BIGINT,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX accounts_kind_name ON accounts (kind, name);

CREATE TABLE group_members (
    group_id BLOB NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    member_account_id BLOB REFERENCES accounts (id) ON DELETE CASCADE,
    member_group_id BLOB REFERENCES groups (id) ON DELETE CASCADE,
    CHECK ((member_account_id IS NULL) <> (member_group_id IS NULL))
);
CREATE UNIQUE INDEX group_members_account ON group_members (group_id, member_account_id) WHERE member_account_id IS NOT NULL;
CREATE UNIQUE INDEX group_members_group ON group_members (group_id, member_group_id) WHERE member_group_id IS NOT NULL;
CREATE INDEX group_members_by_account ON group_members (member_account_id) WHERE member_account_id IS NOT NULL;
CREATE INDEX group_members_by_group ON group_members (member_group_id) WHERE member_group_id IS NOT NULL;

CREATE TABLE password_credentials (
    account_id BLOB PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    hash TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id BLOB PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    account_id BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    idle_timeout_ms BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);

CREATE TABLE api_tokens (
    id BLOB PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    account_id BLOB NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    label TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX api_tokens_account ON api_tokens (account_id);

CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id BLOB NOT NULL UNIQUE,
    revision BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor_id BLOB,
    actor_name TEXT,
    action TEXT NOT NULL,
    target_kind TEXT,
    target_id BLOB,
    target_name TEXT,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_actor ON audit_events (actor_id);
CREATE INDEX audit_events_actor_name ON audit_events (actor_name);
CREATE INDEX audit_events_target ON audit_events (target_id);
CREATE INDEX audit_events_target_name ON audit_events (target_name);
