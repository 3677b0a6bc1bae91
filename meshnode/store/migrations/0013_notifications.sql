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

-- E-mail (only when config.toml has an [email] section). One address per member, used only
-- once verified by a link (``token_hash`` = SHA-256 of the secret sent; the secret itself is
-- never stored). ``digest`` = 1: one mail a day instead of one per notification.
CREATE TABLE member_emails (
    member_id         INTEGER PRIMARY KEY REFERENCES members(id),
    address           TEXT NOT NULL,
    verified_at       TEXT,
    token_hash        TEXT,
    token_expires_at  TEXT,
    enabled           INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    digest            INTEGER NOT NULL DEFAULT 0 CHECK (digest IN (0, 1)),
    last_digest_on    TEXT NOT NULL DEFAULT '',
    last_digest_item  INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL
) STRICT;

-- Mails to send, written in the same transaction as their cause; the mail worker sends them
-- (pending → sent | failed) with the delivery backoff (protocol/retry.py). ``payload``: JSON,
-- the notification ids of a notification or digest mail, or the verification link (cleared
-- once sent).
CREATE TABLE email_outbox (
    id               INTEGER PRIMARY KEY,
    member_id        INTEGER NOT NULL REFERENCES members(id),
    kind             TEXT NOT NULL CHECK (kind IN ('verify', 'notification', 'digest')),
    address          TEXT NOT NULL,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL,
    sent_at          TEXT
) STRICT;
CREATE INDEX email_outbox_due ON email_outbox(next_attempt_at) WHERE state = 'pending';
