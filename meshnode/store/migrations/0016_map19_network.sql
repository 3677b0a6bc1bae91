-- Starter trust lines (issue 19, config [trust.starter]): one row per neighbour community
-- this node ever offered a starter line to, kept whatever became of the offer (accepted,
-- declined, closed), so a neighbour is never offered one twice.
CREATE TABLE starter_offers (
    peer_origin  TEXT PRIMARY KEY,
    peer_actor   TEXT NOT NULL,
    line_id      TEXT NOT NULL,
    offered_at   TEXT NOT NULL
) STRICT;

-- Who our peers peer with (the network map): the origins each peer's Group follows, read
-- from its public ``following`` collection at catch-up time; replaced at each read.
CREATE TABLE peer_links (
    source   TEXT NOT NULL,
    target   TEXT NOT NULL,
    seen_at  TEXT NOT NULL,
    PRIMARY KEY (source, target)
) STRICT;
