-- E-mail addresses carry `verified`. Every address stored so far was set by an administrator
-- (or at a registration, which the next lines cannot tell apart), and administrators' addresses
-- count as verified. Sign-in by address now needs the primary address verified, so the
-- generated lookup column is redefined to hold only a verified primary address.
UPDATE accounts
SET profile = json_set(profile, '$.emails', (
    SELECT json_group_array(json_set(e.value, '$.verified', json('true')))
    FROM json_each(accounts.profile, '$.emails') AS e
))
WHERE kind = 'user' AND json_array_length(profile, '$.emails') > 0;

DROP INDEX accounts_primary_email;
ALTER TABLE accounts DROP COLUMN primary_email;
ALTER TABLE accounts ADD COLUMN primary_email TEXT
    GENERATED ALWAYS AS (CASE WHEN json_extract(profile, '$.emails[0].verified') = 1
        THEN lower(json_extract(profile, '$.emails[0].address')) END) VIRTUAL;
CREATE INDEX accounts_primary_email ON accounts (primary_email) WHERE primary_email IS NOT NULL;
