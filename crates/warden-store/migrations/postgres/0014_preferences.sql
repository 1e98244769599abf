-- Per-tenant preferences of an account (theme, time zone, default namespace, free values), as
-- one JSON document per account and tenant. They go with the account and with the tenant.
CREATE TABLE preferences (
    account_id UUID NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    tenant TEXT COLLATE "C" NOT NULL REFERENCES tenants (name) ON DELETE CASCADE,
    body TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, tenant)
);
CREATE INDEX preferences_tenant ON preferences (tenant);
