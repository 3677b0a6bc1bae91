-- Core schema: node metadata, members, API tokens, listings with signed versions, images, FTS.
CREATE TABLE node_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE members (
    id              INTEGER PRIMARY KEY,
    username        TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL DEFAULT '',
    bio             TEXT NOT NULL DEFAULT '',
    password_hash   TEXT,
    is_admin        INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
    locale          TEXT,
    disabled_at     TEXT,
    ed25519_public  BLOB NOT NULL,
    ed25519_sealed  BLOB NOT NULL,
    rsa_public_pem  TEXT NOT NULL,
    rsa_sealed      BLOB NOT NULL,
    created_at      TEXT NOT NULL
) STRICT;

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    member_id     INTEGER NOT NULL REFERENCES members(id) ON DELETE CASCADE,
    token_hash    BLOB NOT NULL UNIQUE,
    label         TEXT NOT NULL DEFAULT '',
    created_at    TEXT NOT NULL,
    revoked_at    TEXT
) STRICT;
CREATE INDEX api_tokens_member ON api_tokens(member_id);

CREATE TABLE listings (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    object_id      TEXT NOT NULL UNIQUE,
    author_id      INTEGER REFERENCES members(id),
    author_uri     TEXT NOT NULL,
    origin         TEXT NOT NULL,
    is_local       INTEGER NOT NULL CHECK (is_local IN (0, 1)),
    kind           TEXT NOT NULL CHECK (kind IN ('offer', 'request')),
    category       TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('active', 'reserved', 'done', 'withdrawn')),
    title          TEXT NOT NULL,
    description    TEXT NOT NULL,
    price_mode     TEXT NOT NULL CHECK (price_mode IN ('free', 'amount', 'swap')),
    price_amount   TEXT,
    price_period   TEXT,
    location_name  TEXT NOT NULL DEFAULT '',
    lat            REAL,
    lon            REAL,
    details        TEXT NOT NULL DEFAULT '{}',
    expires_at     TEXT,
    published_at   TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    version        INTEGER NOT NULL DEFAULT 1,
    hidden         INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1)),
    signed_object  TEXT NOT NULL
) STRICT;
CREATE INDEX listings_newest ON listings(published_at DESC, seq DESC);
CREATE INDEX listings_author ON listings(author_id, published_at DESC);
CREATE INDEX listings_geo ON listings(lat, lon) WHERE lat IS NOT NULL;

-- Every signed version ever published, so an edit never destroys what was federated.
CREATE TABLE listing_versions (
    listing_id     TEXT NOT NULL REFERENCES listings(id) ON DELETE CASCADE,
    version        INTEGER NOT NULL,
    signed_object  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (listing_id, version)
) STRICT;

CREATE TABLE listing_images (
    id            TEXT PRIMARY KEY,
    listing_id    TEXT NOT NULL REFERENCES listings(id) ON DELETE CASCADE,
    position      INTEGER NOT NULL,
    filename      TEXT NOT NULL,
    media_type    TEXT NOT NULL,
    width         INTEGER NOT NULL,
    height        INTEGER NOT NULL,
    size_bytes    INTEGER NOT NULL,
    alt           TEXT NOT NULL DEFAULT '',
    created_at    TEXT NOT NULL
) STRICT;
CREATE INDEX listing_images_listing ON listing_images(listing_id, position);

-- Accent-insensitive full-text index ("velo" finds "vélo"), kept in step by triggers.
CREATE VIRTUAL TABLE listings_fts USING fts5(
    title, description, location_name,
    content = 'listings', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER listings_fts_insert AFTER INSERT ON listings BEGIN
    INSERT INTO listings_fts(rowid, title, description, location_name)
    VALUES (new.seq, new.title, new.description, new.location_name);
END;
CREATE TRIGGER listings_fts_delete AFTER DELETE ON listings BEGIN
    INSERT INTO listings_fts(listings_fts, rowid, title, description, location_name)
    VALUES ('delete', old.seq, old.title, old.description, old.location_name);
END;
CREATE TRIGGER listings_fts_update AFTER UPDATE OF title, description, location_name ON listings BEGIN
    INSERT INTO listings_fts(listings_fts, rowid, title, description, location_name)
    VALUES ('delete', old.seq, old.title, old.description, old.location_name);
    INSERT INTO listings_fts(rowid, title, description, location_name)
    VALUES (new.seq, new.title, new.description, new.location_name);
END;
