-- SQLite runs every statement on sqlx's worker thread, so each costs two thread hand-offs:
-- a write's audit event now takes its revision in the same statement (the next value, read
-- in the INSERT), and this trigger moves the revision row up to it. An event written at the
-- current revision (bookkeeping) moves nothing. The writer lane is the only writer, so the
-- read and the move cannot interleave with another write.
CREATE TRIGGER audit_events_take_revision AFTER INSERT ON audit_events
WHEN NEW.revision > (SELECT value FROM revision WHERE id = 1)
BEGIN
    UPDATE revision SET value = NEW.revision WHERE id = 1;
END;
