-- Starter trust lines (issue 19, config [trust.starter]): one row per neighbour community
-- this node ever offered a starter line to, kept whatever became of the offer (accepted,
-- declined, closed), so a neighbour is never offered one twice.
CREATE TABLE starter_offers (
    peer_origin  TEXT PRIMARY KEY,
    peer_actor   TEXT NOT NULL,
    line_id      TEXT NOT NULL,
    offered_at   TEXT NOT NULL
) STRICT;
