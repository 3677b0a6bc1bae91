-- A delivery may end as 'left' (issue 17, relay21): a public outbox activity (a listing's
-- Create / Update / Delete, a relayed Announce) to a meshnode peer that pulls our outbox,
-- which told us (429 / 503) to wait longer than its catch-up takes to pull the activity.
-- The row is done, not delivered: the peer's catch-up fetches it. SQLite cannot change a
-- CHECK constraint in place, so the table is rebuilt with its rows, ids and index.
CREATE TABLE deliveries_new (
    id              INTEGER PRIMARY KEY,
    outbox_seq      INTEGER NOT NULL REFERENCES outbox_activities(seq) ON DELETE CASCADE,
    host            TEXT NOT NULL,
    inbox           TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'failed', 'left')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_status     INTEGER,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    done_at         TEXT,
    UNIQUE (outbox_seq, inbox)
) STRICT;
INSERT INTO deliveries_new (id, outbox_seq, host, inbox, state, attempts, next_attempt_at,
                            last_status, last_error, created_at, done_at)
SELECT id, outbox_seq, host, inbox, state, attempts, next_attempt_at, last_status, last_error,
       created_at, done_at FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE INDEX deliveries_due ON deliveries(host, next_attempt_at) WHERE state = 'pending';
