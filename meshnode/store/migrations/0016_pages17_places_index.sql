-- The search form's "near" list (store/listings.known_places) groups the community's own
-- listings by place name. Without an index that read every listing row, signed documents
-- included (12 ms with 10,000 listings); this partial covering index holds just the names and
-- coordinates of the rows the query counts, so the grouping walks it in order (1.2 ms).
-- Its WHERE repeats the query's terms word for word: SQLite only uses a partial index whose
-- condition the query's own WHERE implies (https://sqlite.org/partialindex.html).
CREATE INDEX listings_places ON listings(lower(trim(location_name)), location_name, lat, lon)
    WHERE is_local = 1 AND hidden = 0 AND status != 'withdrawn'
    AND lat IS NOT NULL AND lon IS NOT NULL AND trim(location_name) != '';
