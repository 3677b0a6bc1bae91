-- Deal receipts (protocol/receipts.py): a completed deal signed by both parties and both
-- communities, kept for a member of this node (``holder_id``) as ``party_actor`` (the
-- member's own actor, or the actor they had on the node they moved from). One row per party
-- of a deal: the same party of the same deal counts once on this node, however it arrived.
-- ``state``: 'pending' while the other node has not yet added its proofs (our half only),
-- 'complete' once every proof is there. ``keys``: the keys the proofs were checked with
-- (method → hex), so every read verifies the stored text again.
CREATE TABLE deal_receipts (
    seq           INTEGER PRIMARY KEY,
    deal          TEXT NOT NULL,
    party_actor   TEXT NOT NULL,
    holder_id     INTEGER NOT NULL REFERENCES members(id),
    other_actor   TEXT NOT NULL,
    party_node    TEXT NOT NULL,
    other_node    TEXT NOT NULL,
    completed_at  TEXT NOT NULL,
    rating        INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    no_show       INTEGER NOT NULL CHECK (no_show IN (0, 1)),
    other_rating  INTEGER NOT NULL CHECK (other_rating BETWEEN 1 AND 5),
    other_no_show INTEGER NOT NULL CHECK (other_no_show IN (0, 1)),
    state         TEXT NOT NULL CHECK (state IN ('pending', 'complete')),
    source        TEXT NOT NULL CHECK (source IN ('deal', 'import')),
    document      TEXT NOT NULL,
    keys          TEXT NOT NULL DEFAULT '{}',
    checked_at    TEXT NOT NULL,
    UNIQUE (deal, party_actor)
) STRICT;
CREATE INDEX deal_receipts_holder ON deal_receipts(holder_id, state, completed_at);
CREATE INDEX deal_receipts_other ON deal_receipts(other_actor, state);
-- Covering the counts (store/receipts.py: count_for_holder): read from the index alone,
-- never the documents.
CREATE INDEX deal_receipts_counts ON deal_receipts(holder_id, state, party_node, other_node,
                                                   other_actor, completed_at, no_show);
