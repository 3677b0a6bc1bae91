-- Messages between a local member and a member of another node (ActivityPub direct Notes),
-- and the remote actors a member blocked. Local-to-local messages stay in `messages`.
CREATE TABLE direct_messages (
    id            INTEGER PRIMARY KEY,
    member_id     INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    remote_actor  TEXT NOT NULL,
    remote_handle TEXT NOT NULL,
    direction     TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    listing_id    TEXT REFERENCES listings(id) ON DELETE SET NULL,
    object_id     TEXT NOT NULL UNIQUE,
    in_reply_to   TEXT,
    body          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    read_at       TEXT
) STRICT;
CREATE INDEX direct_messages_conversation ON direct_messages(member_id, remote_actor, id);
CREATE INDEX direct_messages_unread ON direct_messages(member_id)
    WHERE read_at IS NULL AND direction = 'in';

CREATE TABLE member_blocks (
    member_id  INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    actor      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (member_id, actor)
) STRICT;
CREATE INDEX direct_messages_handle ON direct_messages(member_id, remote_handle);
