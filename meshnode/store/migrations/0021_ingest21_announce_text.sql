-- A relayed Announce's object stored once (issue 17).
-- The inbox worker stores a received listing's signed text in listings.signed_object and
-- then logged the Announce relaying it with the same ~3 KB text inside its body: a second
-- copy written to the WAL per relayed listing. Such a row now holds only the Announce's
-- JSON around the object: ``body`` is the text before it, ``body_tail`` the text after it,
-- and ``object_of`` the listing (listings.id) whose signed_object goes in between.
-- Readers take (store.outbox.BODY):
--   CASE WHEN object_of IS NULL THEN body
--        ELSE body || (SELECT signed_object FROM listings WHERE id = object_of) || body_tail END
-- which is byte for byte the Announce as it was encoded (its HTTP digest and the author's
-- proof inside are unchanged). Before a listing's text is replaced or the listing deleted,
-- the triggers below give each Announce still pointing at it its own full copy, so no
-- writer has to know: the text an Announce sends never changes. Rows stored before this
-- migration keep their full copies (object_of NULL).
ALTER TABLE outbox_activities ADD COLUMN object_of TEXT;
ALTER TABLE outbox_activities ADD COLUMN body_tail TEXT;
CREATE INDEX IF NOT EXISTS outbox_object_of ON outbox_activities(object_of)
    WHERE object_of IS NOT NULL;
CREATE TRIGGER IF NOT EXISTS outbox_keep_text
AFTER UPDATE OF signed_object ON listings BEGIN
    UPDATE outbox_activities SET body = body || old.signed_object || body_tail,
                                 body_tail = NULL, object_of = NULL
    WHERE object_of = old.id;
END;
CREATE TRIGGER IF NOT EXISTS outbox_keep_text_deleted
AFTER DELETE ON listings BEGIN
    UPDATE outbox_activities SET body = body || old.signed_object || body_tail,
                                 body_tail = NULL, object_of = NULL
    WHERE object_of = old.id;
END;
