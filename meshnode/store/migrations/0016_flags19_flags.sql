-- Reports across nodes (ActivityPub Flag): a report may be about a listing of another node
-- (direction 'out': forwarded as a Flag) or arrive from another node (direction 'in'), whose
-- object may be unknown here (listing_id NULL, unknown_object 1). SQLite cannot drop a NOT
-- NULL constraint in place, so the table is rebuilt with the same ids.
CREATE TABLE reports_v2 (
    id               INTEGER PRIMARY KEY,
    listing_id       TEXT REFERENCES listings(id) ON DELETE CASCADE,
    reporter_id      INTEGER REFERENCES members(id) ON DELETE SET NULL,
    reason           TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    resolved_at      TEXT,
    resolution       TEXT,
    category         TEXT NOT NULL DEFAULT 'other',
    anonymous        INTEGER NOT NULL DEFAULT 0,
    direction        TEXT NOT NULL DEFAULT 'local' CHECK (direction IN ('local', 'out', 'in')),
    flag_id          TEXT UNIQUE,
    remote_community TEXT,
    remote_actor     TEXT,
    reply_inbox      TEXT,
    objects          TEXT NOT NULL DEFAULT '[]',
    unknown_object   INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO reports_v2 (id, listing_id, reporter_id, reason, created_at, resolved_at, resolution)
    SELECT id, listing_id, reporter_id, reason, created_at, resolved_at, resolution FROM reports;
DROP TABLE reports;
ALTER TABLE reports_v2 RENAME TO reports;
CREATE INDEX reports_open ON reports(created_at) WHERE resolved_at IS NULL;
CREATE INDEX reports_by_reporter ON reports(reporter_id, listing_id, created_at);

-- Listings hidden because an admin blocked their node (so unblocking shows them again
-- without touching the ones a moderator hid).
CREATE TABLE block_hidden_listings (
    listing_id  TEXT PRIMARY KEY REFERENCES listings(id) ON DELETE CASCADE,
    origin      TEXT NOT NULL,
    hidden_at   TEXT NOT NULL
) STRICT;
CREATE INDEX block_hidden_by_origin ON block_hidden_listings(origin);

-- Trust lines frozen by a block (unblocking unfreezes these, not lines frozen otherwise).
CREATE TABLE block_frozen_lines (
    line_id  TEXT PRIMARY KEY,
    origin   TEXT NOT NULL
) STRICT;

-- Block lists of peers this node subscribes to, and each block they propose.
CREATE TABLE blocklist_subscriptions (
    origin        TEXT PRIMARY KEY,
    actor         TEXT NOT NULL,
    auto_apply    INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    last_fetch_at TEXT,
    last_error    TEXT,
    items         INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE blocklist_proposals (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL REFERENCES blocklist_subscriptions(origin) ON DELETE CASCADE,
    target      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('proposed', 'applied', 'ignored')),
    seen_at     TEXT NOT NULL,
    decided_at  TEXT,
    UNIQUE (source, target)
) STRICT;
