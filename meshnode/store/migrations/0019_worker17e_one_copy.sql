-- One stored copy of a received listing's signed object (issue 17).
-- The inbox worker stores a new remote listing's version 1 with signed_object = '' in
-- listing_versions: its text is the listing's own signed_object (listings), which it would
-- otherwise write twice (~2.5 KB, a fifth of the bytes a received listing writes).
-- Readers take COALESCE(NULLIF(v.signed_object, ''), l.signed_object).
-- Before a listing's signed_object is replaced, this trigger gives the version that still
-- points at it its own copy, so no writer has to know: '' always means "the listing's
-- current text". Rows stored before this migration keep their full copies.
-- The partial index finds a listing's '' row at once, however many versions it has (the
-- trigger runs on every change of a listing's text, local edits included).
CREATE INDEX IF NOT EXISTS listing_versions_shared ON listing_versions(listing_id)
    WHERE signed_object = '';
CREATE TRIGGER IF NOT EXISTS listing_versions_keep_text
AFTER UPDATE OF signed_object ON listings BEGIN
    UPDATE listing_versions SET signed_object = old.signed_object
    WHERE listing_id = old.id AND signed_object = '';
END;
