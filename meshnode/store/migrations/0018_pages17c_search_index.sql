-- Search: the columns a text search filters and sorts its matches by, keyed by seq (issue 17).
-- A text search looks up every listing the words match by seq, then keeps the newest 21.
-- Looked up in the table, each match reads a page of its own (a row carries its signed
-- document, ~2 KB): 400 matches at 2,000 listings already overflow the 1 MiB page cache.
-- This index holds ~80 matches a page: the same search reads ~20x fewer pages
-- (store/listings.py: search_listings names it).
CREATE INDEX IF NOT EXISTS listings_match ON listings(
    seq, status, hidden, expires_at, published_at, kind, category, price_mode, is_local,
    lat, lon);
