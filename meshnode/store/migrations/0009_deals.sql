-- Deals (FEP-0837 Offer of an Agreement): one row per booking this node takes part in,
-- moved only by the transitions of protocol/deals.py; every move is logged in deal_events.
CREATE TABLE deals (
    id              TEXT PRIMARY KEY,
    agreement_id    TEXT NOT NULL UNIQUE,
    offer_id        TEXT NOT NULL UNIQUE,
    listing_id      TEXT NOT NULL REFERENCES listings(id),
    category        TEXT NOT NULL,
    booker_uri      TEXT NOT NULL,
    booker_id       INTEGER REFERENCES members(id),
    author_uri      TEXT NOT NULL,
    author_id       INTEGER REFERENCES members(id),
    state           TEXT NOT NULL CHECK (state IN ('requested', 'accepted', 'declined',
                        'cancelled', 'expired', 'in_progress', 'completed', 'disputed')),
    quantity        INTEGER NOT NULL CHECK (quantity > 0),
    slot_start      TEXT,
    slot_end        TEXT,
    amount          INTEGER NOT NULL DEFAULT 0 CHECK (amount >= 0),
    deposit         INTEGER NOT NULL DEFAULT 0 CHECK (deposit >= 0),
    message         TEXT NOT NULL DEFAULT '',
    reason          TEXT NOT NULL DEFAULT '',
    offer           TEXT NOT NULL,
    answer          TEXT,
    agreed_at       TEXT,
    expires_at      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    CHECK (booker_id IS NOT NULL OR author_id IS NOT NULL),
    CHECK ((slot_start IS NULL) = (slot_end IS NULL) AND (slot_end IS NULL OR slot_end > slot_start))
) STRICT;
CREATE INDEX deals_listing ON deals(listing_id, state);
CREATE INDEX deals_booker ON deals(booker_id, created_at) WHERE booker_id IS NOT NULL;
CREATE INDEX deals_author ON deals(author_id, created_at) WHERE author_id IS NOT NULL;
CREATE INDEX deals_due ON deals(expires_at) WHERE state = 'requested';

-- Audit trail of transitions (and the ledger entries they made).
CREATE TABLE deal_events (
    seq         INTEGER PRIMARY KEY,
    deal_id     TEXT NOT NULL REFERENCES deals(id),
    action      TEXT NOT NULL,
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    payments    TEXT NOT NULL DEFAULT '',
    at          TEXT NOT NULL
) STRICT;
CREATE INDEX deal_events_deal ON deal_events(deal_id, seq);

-- Signed feedback after a completed deal, one per party and deal; remote ones included.
CREATE TABLE deal_feedback (
    id           TEXT PRIMARY KEY,
    deal_id      TEXT NOT NULL REFERENCES deals(id),
    author_uri   TEXT NOT NULL,
    subject_uri  TEXT NOT NULL,
    rating       INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment      TEXT NOT NULL,
    no_show      INTEGER NOT NULL CHECK (no_show IN (0, 1)),
    document     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (deal_id, author_uri)
) STRICT;
CREATE INDEX deal_feedback_subject ON deal_feedback(subject_uri, created_at);
