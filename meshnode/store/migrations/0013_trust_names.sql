-- Issue 14, "Trust that shows" and "Names, not URLs".

-- The verification result kept with each stored listing version: which key (id and
-- fingerprint) proved it, when, under which rule; NULL verified = never checked here.
ALTER TABLE listing_versions ADD COLUMN verified INTEGER CHECK (verified IN (0, 1));
ALTER TABLE listing_versions ADD COLUMN key_id TEXT;
ALTER TABLE listing_versions ADD COLUMN key_fingerprint TEXT;
ALTER TABLE listing_versions ADD COLUMN rule TEXT;
ALTER TABLE listing_versions ADD COLUMN checked_at TEXT;
ALTER TABLE listing_versions ADD COLUMN check_error TEXT;

-- Remote actors' display names (already cleaned: no control characters, capped), and the
-- background refresh's last attempt, so a failing actor waits for its next turn.
ALTER TABLE remote_actors ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE remote_actors ADD COLUMN refresh_attempted_at TEXT;
ALTER TABLE remote_actors ADD COLUMN refresh_error TEXT;

-- The names worker refreshes the authors of stored remote listings: find them by actor.
CREATE INDEX listings_remote_author ON listings(author_uri) WHERE is_local = 0;
