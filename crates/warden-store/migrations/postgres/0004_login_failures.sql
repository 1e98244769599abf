-- Failed password attempts, for the soft lock: shared by every node and kept across restarts.
-- A key is a SHA-256 digest of what is counted (an account name as typed, a client address),
-- never the name itself: people sometimes type their password as their name.
CREATE TABLE login_failures (
    key BYTEA NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_by_key ON login_failures (key, at);
CREATE INDEX login_failures_by_age ON login_failures (at);
