-- The account lifecycle's mail. A queued mail names what to send (its kind), to whom and about
-- which account or invitation, never the link: the link's one-time token is made when the mail
-- is sent, so the database never holds a token in clear. Several nodes share the queue; a node
-- takes a mail by setting its lease, so a mail is sent once.
CREATE TABLE mail_queue (
    id UUID PRIMARY KEY,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    account_id UUID REFERENCES accounts (id) ON DELETE CASCADE,
    reference_id UUID,
    created_at BIGINT NOT NULL,
    not_before BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT,
    sent_at BIGINT,
    failed_at BIGINT,
    last_error TEXT
);
CREATE INDEX mail_queue_due ON mail_queue (not_before) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_queue_account ON mail_queue (account_id, kind, created_at);

-- An e-mail verification token names the address it verifies.
ALTER TABLE one_time_tokens ADD COLUMN detail TEXT;

-- An invitation is a one-use registration token bound to the address it was mailed to.
ALTER TABLE registration_tokens ADD COLUMN email TEXT;

-- A flagged account's sessions can only change the password until it is changed.
ALTER TABLE accounts ADD COLUMN password_change_required BOOLEAN NOT NULL DEFAULT FALSE;
