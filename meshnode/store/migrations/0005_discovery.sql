-- Neighbours found on the LAN over mDNS (issue 6). One row per DNS-SD instance name.
-- An advert is only a hint: ``status`` moves to 'verified' only after the node proved it
-- holds ``public_key`` (signed challenge), see meshnode/federation/discovery.py.
--   discovered -> verified -> peering_requested -> peered
--   discovered -> rejected (spoofed / failed too often; or blocked by an admin)
--   any -> offline (goodbye received); offline -> discovered (seen again)
CREATE TABLE neighbours (
    id                INTEGER PRIMARY KEY,
    instance_name     TEXT NOT NULL UNIQUE,
    fingerprint       TEXT NOT NULL,
    public_key        BLOB NOT NULL CHECK (length(public_key) = 32),
    community_name    TEXT NOT NULL,
    actor_path        TEXT NOT NULL,
    protocol_version  INTEGER NOT NULL,
    addresses         TEXT NOT NULL DEFAULT '[]',   -- JSON list, best first
    port              INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    status            TEXT NOT NULL DEFAULT 'discovered' CHECK (status IN
                      ('discovered', 'verified', 'peering_requested', 'peered', 'offline',
                       'rejected')),
    actor_url         TEXT,                        -- the URL that verified (address + path)
    approved          INTEGER NOT NULL DEFAULT 0,  -- an admin said "peer" (policy approve)
    blocked           INTEGER NOT NULL DEFAULT 0,  -- an admin said "block": never verified
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   TEXT,
    first_seen        TEXT NOT NULL,
    last_seen         TEXT NOT NULL,
    verified_at       TEXT,
    last_error        TEXT
) STRICT;

CREATE INDEX neighbours_due ON neighbours (status, next_attempt_at);
CREATE INDEX neighbours_key ON neighbours (public_key);
