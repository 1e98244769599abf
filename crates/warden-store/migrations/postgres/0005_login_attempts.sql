-- Password checks are reserved before they run: each attempt is recorded as a failure under
-- every throttle key first (with its attempt id, so that a success takes exactly its own rows
-- back), inside a transaction that holds the key's lock row. The lock rows serialise the
-- reservations of one key across nodes; they are forgotten with the failures.
ALTER TABLE login_failures ADD COLUMN attempt UUID;
CREATE INDEX login_failures_by_attempt ON login_failures (attempt);
CREATE TABLE login_locks (
    key BYTEA PRIMARY KEY,
    at BIGINT NOT NULL
);
CREATE INDEX login_locks_by_age ON login_locks (at);
