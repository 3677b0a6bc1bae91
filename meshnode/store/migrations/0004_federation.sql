-- Federation: remote actors and keys, inbox, outbox log, deliveries, followers, peers.

-- Remote actor documents, fetched from their own id (REFERENCE §2: a key authenticates an
-- actor only if that actor's document lists it).
CREATE TABLE remote_actors (
    id             TEXT PRIMARY KEY,
    origin         TEXT NOT NULL,
    type           TEXT NOT NULL,
    username       TEXT NOT NULL DEFAULT '',
    inbox          TEXT NOT NULL,
    shared_inbox   TEXT,
    outbox         TEXT,
    is_meshnode    INTEGER NOT NULL DEFAULT 0,
    document       TEXT NOT NULL,
    fetched_at     TEXT NOT NULL
) STRICT;

CREATE TABLE remote_keys (
    key_id      TEXT PRIMARY KEY,
    actor_id    TEXT NOT NULL REFERENCES remote_actors(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('rsa', 'ed25519')),
    material    TEXT NOT NULL
) STRICT;
CREATE INDEX remote_keys_actor ON remote_keys(actor_id);

-- Authenticated activities, stored before the 202 and processed later; dedup by id.
CREATE TABLE inbox_activities (
    seq           INTEGER PRIMARY KEY,
    activity_id   TEXT NOT NULL UNIQUE,
    actor         TEXT NOT NULL,
    type          TEXT NOT NULL,
    body          TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    processed_at  TEXT,
    outcome       TEXT
) STRICT;
CREATE INDEX inbox_unprocessed ON inbox_activities(seq) WHERE processed_at IS NULL;

-- Everything this node sends. public=1 rows form the outbox collection (catch-up cursor = seq).
CREATE TABLE outbox_activities (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    activity_id  TEXT NOT NULL UNIQUE,
    actor        TEXT NOT NULL,
    type         TEXT NOT NULL,
    object_id    TEXT,
    public       INTEGER NOT NULL CHECK (public IN (0, 1)),
    body         TEXT NOT NULL,
    created_at   TEXT NOT NULL
) STRICT;
CREATE INDEX outbox_public ON outbox_activities(actor, seq) WHERE public = 1;

-- One row per (activity, inbox): persisted before any attempt.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    outbox_seq      INTEGER NOT NULL REFERENCES outbox_activities(seq) ON DELETE CASCADE,
    host            TEXT NOT NULL,
    inbox           TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    done_at         TEXT,
    UNIQUE (outbox_seq, inbox)
) STRICT;
CREATE INDEX deliveries_due ON deliveries(host, next_attempt_at) WHERE state = 'pending';

-- What each remote host accepted as a signature (double-knocking memory).
CREATE TABLE delivery_hosts (
    host        TEXT PRIMARY KEY,
    scheme      TEXT NOT NULL CHECK (scheme IN ('rfc9421-ed25519', 'cavage-rsa', 'rfc9421-rsa')),
    updated_at  TEXT NOT NULL
) STRICT;

-- Remote actors following a local actor (the Group for peers, or a member).
CREATE TABLE followers (
    local_actor   TEXT NOT NULL,
    remote_actor  TEXT NOT NULL,
    follow_id     TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'accepted')),
    created_at    TEXT NOT NULL,
    PRIMARY KEY (local_actor, remote_actor)
) STRICT;

-- Peer nodes: our Follow of their Group actor (a state machine), block flag, sync cursor.
CREATE TABLE peers (
    origin          TEXT PRIMARY KEY,
    requested       TEXT NOT NULL,
    actor_id        TEXT,
    out_state       TEXT NOT NULL CHECK (out_state IN
                      ('none', 'resolving', 'following', 'peered', 'rejected', 'failed')),
    out_follow_id   TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    blocked         INTEGER NOT NULL DEFAULT 0 CHECK (blocked IN (0, 1)),
    sync_cursor     INTEGER NOT NULL DEFAULT 0,
    sync_due        INTEGER NOT NULL DEFAULT 0 CHECK (sync_due IN (0, 1)),
    last_sync_at    TEXT,
    last_delivery_at TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;
