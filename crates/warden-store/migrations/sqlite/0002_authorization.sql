-- Authorization: tenants, dynamic roles, bindings; session elevation; token scope.

CREATE TABLE tenants (
    name TEXT PRIMARY KEY,
    description TEXT,
    created_at BIGINT NOT NULL
);
INSERT INTO tenants (name, description, created_at) VALUES ('default', 'The instance''s home tenant', 0);

CREATE TABLE roles (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    permissions TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX roles_tenant ON roles (tenant, id);

-- role_id is not a foreign key: built-in and system roles live in code and configuration.
CREATE TABLE bindings (
    id BLOB PRIMARY KEY,
    role_id TEXT NOT NULL,
    subject_account_id BLOB REFERENCES accounts (id) ON DELETE CASCADE,
    subject_group_id BLOB REFERENCES groups (id) ON DELETE CASCADE,
    tenant TEXT NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    namespaces TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL,
    CHECK ((subject_account_id IS NULL) <> (subject_group_id IS NULL))
);
CREATE INDEX bindings_role ON bindings (role_id);
CREATE INDEX bindings_account ON bindings (subject_account_id) WHERE subject_account_id IS NOT NULL;
CREATE INDEX bindings_group ON bindings (subject_group_id) WHERE subject_group_id IS NOT NULL;
CREATE INDEX bindings_tenant ON bindings (tenant);

ALTER TABLE sessions ADD COLUMN elevated_until BIGINT;
ALTER TABLE api_tokens ADD COLUMN read_write BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE api_tokens ADD COLUMN roles TEXT;

CREATE INDEX audit_events_revision ON audit_events (revision);
