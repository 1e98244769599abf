-- Sign-in by primary e-mail address: the address, lower-cased, as a column generated from the
-- profile (whose first address is always the primary one) and indexed, so that the lookup
-- costs one index search whether or not the address exists. Only ASCII letters are folded,
-- as SQLite's lower() does, so that both backends match the same addresses.
ALTER TABLE accounts ADD COLUMN primary_email TEXT COLLATE "C"
    GENERATED ALWAYS AS (translate((profile::jsonb) #>> '{emails,0,address}', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')) STORED;
CREATE INDEX accounts_primary_email ON accounts (primary_email) WHERE primary_email IS NOT NULL;
