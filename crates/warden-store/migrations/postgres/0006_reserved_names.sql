-- Names that an account gave up (a rename, a deletion) stay reserved for a while, so that
-- nobody else can take one over, and with it whatever an application keyed on the name.
-- `account_id` is who held it (no foreign key: a deleted account's name stays reserved); that
-- account may take it back. Rows past `until` reserve nothing and are deleted as others come.
CREATE TABLE reserved_names (
    name TEXT COLLATE "C" PRIMARY KEY,
    account_id UUID NOT NULL,
    until BIGINT NOT NULL
);
CREATE INDEX reserved_names_until ON reserved_names (until);
