-- Members' web UI: browser sessions, invitations, member-to-member messages, reports, settings.

-- Server-side sessions: the cookie holds a random secret, only its SHA-256 is stored.
CREATE TABLE web_sessions (
    id            TEXT PRIMARY KEY,            -- hex SHA-256 of the cookie secret
    member_id     INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    csrf_token    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    revoked_at    TEXT
) STRICT;
CREATE INDEX web_sessions_member ON web_sessions(member_id);

-- Single-use, expiring invitation links (only the hash of the link secret is stored).
CREATE TABLE invitations (
    id            TEXT PRIMARY KEY,
    token_hash    BLOB NOT NULL UNIQUE,
    created_by    INTEGER REFERENCES members(id) ON DELETE SET NULL,
    note          TEXT NOT NULL DEFAULT '',
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    used_at       TEXT,
    used_by       INTEGER REFERENCES members(id) ON DELETE SET NULL,
    revoked_at    TEXT
) STRICT;

CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    listing_id    TEXT NOT NULL REFERENCES listings(id) ON DELETE CASCADE,
    sender_id     INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    recipient_id  INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    body          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    read_at       TEXT
) STRICT;
CREATE INDEX messages_recipient_unread ON messages(recipient_id) WHERE read_at IS NULL;
CREATE INDEX messages_recipient ON messages(recipient_id, created_at DESC);
CREATE INDEX messages_sender ON messages(sender_id, created_at DESC);

CREATE TABLE reports (
    id            INTEGER PRIMARY KEY,
    listing_id    TEXT NOT NULL REFERENCES listings(id) ON DELETE CASCADE,
    reporter_id   INTEGER REFERENCES members(id) ON DELETE SET NULL,
    reason        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    resolved_at   TEXT,
    resolution    TEXT
) STRICT;
CREATE INDEX reports_open ON reports(created_at) WHERE resolved_at IS NULL;

-- Community settings editable by admins from the web (the TOML config stays the base).
CREATE TABLE community_settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) STRICT;
