-- The `default` tenant was inserted with created_at = 0 (1970). It exists since the database
-- does: the first account (a break-glass account, made at the first start) dates that on an
-- existing database; a new database is being created now.
UPDATE tenants
SET created_at = COALESCE((SELECT MIN(created_at) FROM accounts), (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT)
WHERE name = 'default' AND created_at = 0;
