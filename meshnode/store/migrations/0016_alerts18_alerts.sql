-- Saved searches and the wants of listings (issue 18, "Matching and alerts").
-- A row is either a member's saved search (``listing_id`` NULL, at most 50 per member), or
-- what a listing stored here wants: a request's title, a swap's "wanted" (``listing_id``
-- set, one per want of the listing; ``member_id`` is its local author, NULL for a neighbour's listing,
-- which is matched for "matching requests" but never notified here).
-- ``need``: how many of its folded words (``alert_terms``) a listing must contain; 0 = any
-- listing of the kind/category/place/price. ``max_price`` in the currency's minor units.
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    member_id   INTEGER REFERENCES members(id) ON DELETE CASCADE,
    listing_id  TEXT REFERENCES listings(id) ON DELETE CASCADE,
    q           TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL CHECK (kind IN ('offer', 'request')),
    category    TEXT,
    near        TEXT,
    near_lat    REAL,
    near_lon    REAL,
    radius_km   REAL,
    max_price   INTEGER,
    need        INTEGER NOT NULL CHECK (need >= 0),
    created_at  TEXT NOT NULL
) STRICT;
CREATE INDEX alerts_member ON alerts(member_id, id) WHERE listing_id IS NULL;
CREATE INDEX alerts_listing ON alerts(listing_id) WHERE listing_id IS NOT NULL;
-- Alerts without words are found by kind and category, not by a scan of every alert.
CREATE INDEX alerts_wordless ON alerts(kind, category) WHERE need = 0;

-- The inverted index: one row per (folded word, alert). A listing's arrival looks up the
-- prefixes of its own words here; an alert matches when ``need`` of its words are found.
CREATE TABLE alert_terms (
    term      TEXT NOT NULL,
    alert_id  INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    PRIMARY KEY (term, alert_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX alert_terms_alert ON alert_terms(alert_id);

-- At most one match per (alert, listing): an updated listing, a relay's second copy or a
-- republication never tells anyone twice.
CREATE TABLE alert_matches (
    alert_id    INTEGER NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    listing_id  TEXT NOT NULL REFERENCES listings(id) ON DELETE CASCADE,
    member_id   INTEGER REFERENCES members(id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (alert_id, listing_id)
) STRICT;
CREATE INDEX alert_matches_member ON alert_matches(member_id, listing_id);
CREATE INDEX alert_matches_listing ON alert_matches(listing_id);

-- Expiry: the warning worker asks for our active listings expiring in the next days, and
-- "Mes annonces" for the expired ones; both read this index instead of scanning listings.
CREATE INDEX IF NOT EXISTS listings_local_expiry ON listings(expires_at) WHERE is_local = 1;  -- also made by 0016_pages17_startup_index
