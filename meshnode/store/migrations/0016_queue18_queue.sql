-- Waiting lists of lent items (protocol/queue.py: QUEUE_GRAPH) and private calendar feeds.
-- One row per member's place in one listing's queue; moved only by the graph's transitions.
CREATE TABLE listing_queue (
    id          INTEGER PRIMARY KEY,
    listing_id  TEXT NOT NULL REFERENCES listings(id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    state       TEXT NOT NULL CHECK (state IN ('waiting', 'notified', 'confirmed', 'lapsed',
                    'left', 'closed')),
    joined_at   TEXT NOT NULL,
    notified_at TEXT,
    confirm_by  TEXT,
    deal_id     TEXT,
    updated_at  TEXT NOT NULL
) STRICT;
-- A member holds at most one live place per item.
CREATE UNIQUE INDEX listing_queue_one_live ON listing_queue(listing_id, member_id)
    WHERE state IN ('waiting', 'notified');
CREATE INDEX listing_queue_live ON listing_queue(listing_id, id)
    WHERE state IN ('waiting', 'notified');

-- A member's private calendar feed: only the SHA-256 of the secret in the URL is kept.
CREATE TABLE calendar_tokens (
    member_id   INTEGER PRIMARY KEY REFERENCES members(id),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
) STRICT;
