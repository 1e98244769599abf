-- Nothing to do on PostgreSQL: `OPEN_SQL` already takes the revision and writes the event in
-- one statement (a data-modifying CTE). The number is kept so that both backends' migration
-- lists stay parallel.
SELECT 1;
