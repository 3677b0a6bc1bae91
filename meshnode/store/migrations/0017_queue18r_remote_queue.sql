-- Waiting lists across communities (README "Deals": waiting list).
-- On the lender's node, a place in listing_queue is held either by one of our members
-- (member_id) or by a member of another community (remote_actor, its origin, and the id of
-- the signed Join that asked for it). SQLite cannot relax NOT NULL in place: the table is
-- rebuilt with its rows, ids (= joining order) kept.
CREATE TABLE IF NOT EXISTS listing_queue_rebuilt (
    id            INTEGER PRIMARY KEY,
    listing_id    TEXT NOT NULL REFERENCES listings(id),
    member_id     INTEGER REFERENCES members(id),
    state         TEXT NOT NULL CHECK (state IN ('waiting', 'notified', 'confirmed', 'lapsed',
                      'left', 'closed')),
    joined_at     TEXT NOT NULL,
    notified_at   TEXT,
    confirm_by    TEXT,
    deal_id       TEXT,
    updated_at    TEXT NOT NULL,
    remote_actor  TEXT,
    remote_origin TEXT,
    join_id       TEXT,
    CHECK ((member_id IS NULL) <> (remote_actor IS NULL)),
    CHECK ((remote_actor IS NULL) = (remote_origin IS NULL))
) STRICT;
INSERT INTO listing_queue_rebuilt (id, listing_id, member_id, state, joined_at, notified_at,
                                   confirm_by, deal_id, updated_at)
    SELECT id, listing_id, member_id, state, joined_at, notified_at, confirm_by, deal_id,
           updated_at FROM listing_queue;
DROP TABLE listing_queue;
ALTER TABLE listing_queue_rebuilt RENAME TO listing_queue;
CREATE UNIQUE INDEX IF NOT EXISTS listing_queue_one_live ON listing_queue(listing_id, member_id)
    WHERE state IN ('waiting', 'notified') AND member_id IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS listing_queue_one_remote
    ON listing_queue(listing_id, remote_actor)
    WHERE state IN ('waiting', 'notified') AND remote_actor IS NOT NULL;
CREATE INDEX IF NOT EXISTS listing_queue_live ON listing_queue(listing_id, id)
    WHERE state IN ('waiting', 'notified');
CREATE INDEX IF NOT EXISTS listing_queue_origin ON listing_queue(remote_origin)
    WHERE state IN ('waiting', 'notified') AND remote_origin IS NOT NULL;

-- On the member's node: their places in other communities' waiting lists, as last told by
-- the lender's node (joining: the Join is on its way; refused: with the lender's reason).
CREATE TABLE IF NOT EXISTS remote_queue_places (
    id          INTEGER PRIMARY KEY,
    listing_id  TEXT NOT NULL REFERENCES listings(id),
    member_id   INTEGER NOT NULL REFERENCES members(id),
    join_id     TEXT NOT NULL UNIQUE,
    state       TEXT NOT NULL CHECK (state IN ('joining', 'waiting', 'notified', 'confirmed',
                    'lapsed', 'left', 'closed', 'refused')),
    position    INTEGER,
    confirm_by  TEXT,
    reason      TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS remote_queue_one_live
    ON remote_queue_places(listing_id, member_id)
    WHERE state IN ('joining', 'waiting', 'notified');
CREATE INDEX IF NOT EXISTS remote_queue_member ON remote_queue_places(member_id, id);
