-- E-mail addresses carry `verified`. Every address stored so far was set by an administrator
-- (or at a registration, which the next lines cannot tell apart), and administrators' addresses
-- count as verified. Sign-in by address now needs the primary address verified, so the
-- generated lookup column is redefined to hold only a verified primary address.
UPDATE accounts
SET profile = jsonb_set(profile::jsonb, '{emails}', (
    SELECT jsonb_agg(e.value || '{"verified": true}'::jsonb ORDER BY e.ord)
    FROM jsonb_array_elements(profile::jsonb -> 'emails') WITH ORDINALITY AS e(value, ord)
))::text
WHERE kind = 'user' AND jsonb_array_length(COALESCE(profile::jsonb -> 'emails', '[]'::jsonb)) > 0;

ALTER TABLE accounts DROP COLUMN primary_email;
ALTER TABLE accounts ADD COLUMN primary_email TEXT COLLATE "C"
    GENERATED ALWAYS AS (CASE WHEN (profile::jsonb #>> '{emails,0,verified}') = 'true'
        THEN translate((profile::jsonb) #>> '{emails,0,address}', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz') END) STORED;
CREATE INDEX accounts_primary_email ON accounts (primary_email) WHERE primary_email IS NOT NULL;
