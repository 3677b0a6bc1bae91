-- Search: a frequent word (a fifth of the listings or more) walks its matches newest first
-- through listings_newest (store/listings.py: _walk_newest_first), ~100 entries for a page
-- of 21, and each entry looked its row up in the table to test the filters (status, hidden,
-- expiry, kind, category, price, place). With the columns the filters read (those of
-- listings_match) the walk reads the index only: 305-325 -> 241-260 µs of SQL per search of
-- bench_web.py's mix at 10,000 listings (issue 17). Same name and leading columns, so the
-- queries that used it (home, feeds, INDEXED BY) keep it; one index, not two, to update.
DROP INDEX IF EXISTS listings_newest;
CREATE INDEX listings_newest ON listings(
    published_at DESC, seq DESC, status, hidden, expires_at, kind, category, price_mode,
    is_local, lat, lon);
