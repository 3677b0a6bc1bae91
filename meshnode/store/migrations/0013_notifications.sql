-- Notification centre (issue 14): one row per event a member is told about, written in the
-- same transaction as the event itself, so a crash cannot lose one nor invent one.
-- ``target_url`` is the page the item links to (a path on this node); ``ref`` the id of the
-- deal, transaction, request, listing, message or report it is about; ``detail`` a short text
-- (a memo, a listing title) shown with the type's translated sentence; ``amount`` in the
-- community currency's minor units for payments (formatted for the reader when shown).
CREATE TABLE notifications (
    id          INTEGER PRIMARY KEY,
    member_id   INTEGER NOT NULL REFERENCES members(id),
    type        TEXT NOT NULL,
    ref         TEXT NOT NULL DEFAULT '',
    target_url  TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT '',
    amount      INTEGER,
    created_at  TEXT NOT NULL,
    read_at     TEXT
) STRICT;
CREATE INDEX notifications_member ON notifications(member_id, id);
CREATE INDEX notifications_unread ON notifications(member_id) WHERE read_at IS NULL;

-- Per-member preferences: the types the member does NOT want (absent row = every type on).
CREATE TABLE notification_muted (
    member_id  INTEGER NOT NULL REFERENCES members(id),
    type       TEXT NOT NULL,
    PRIMARY KEY (member_id, type)
) STRICT;
