-- A plain index on the containing group: counting a group's members (and walking nested
-- groups) cannot use the partial unique indexes of 0001.
CREATE INDEX group_members_by_container ON group_members (group_id);
