-- Catch-up reads a peer's public `following` (for the network map) at most every few hours
-- and conditionally (If-None-Match): when it was last read and the ETag it came with
-- (issue 20: an unchanged peer should cost one small request).
ALTER TABLE peers ADD COLUMN following_read_at TEXT;
ALTER TABLE peers ADD COLUMN following_etag TEXT;
