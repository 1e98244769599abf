-- OpenID Connect clients. `client_id` is the client's name (lower case, unique); a confidential
-- client's secret is kept only as its SHA-256 (`secret_hash`), a public client has none. The
-- lists (redirect URIs, scopes, claim sets) are JSON arrays of strings: they are read and
-- written whole, never queried. A client tied to a service account loses the tie, not its
-- row, when the account is deleted.
CREATE TABLE oidc_clients (
    id UUID PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    public BOOLEAN NOT NULL,
    first_party BOOLEAN NOT NULL,
    secret_hash BYTEA,
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    scopes TEXT NOT NULL,
    claims TEXT NOT NULL,
    permissions_tenant TEXT,
    permissions_namespace TEXT,
    signing_alg TEXT NOT NULL,
    service_account_id UUID REFERENCES accounts (id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
