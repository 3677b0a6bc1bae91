-- IOUs between communities (REFERENCE.md §6): trust lines, cross-node transfers, the line
-- moves that explain each line's balance, and reconciliation results.

-- One row per trust line with a peer node, on both nodes (same line id). The other
-- community is the system account ``account`` (``node:<host[:port]>``) on our ledger; its
-- limits are the line's: max_balance = what we may owe them, min_balance = -(what they may
-- owe us), in our minor units. ``intent`` is work for the node's IOU worker (the CLI only
-- writes rows): 'offer' (resolve the peer and send the offer), 'accept', 'reject',
-- 'update' (send ``pending_change``).
CREATE TABLE iou_lines (
    id              TEXT PRIMARY KEY,
    requested       TEXT NOT NULL,
    peer_actor      TEXT,
    peer_origin     TEXT,
    peer_inbox      TEXT,
    account         TEXT UNIQUE,
    is_proposer     INTEGER NOT NULL CHECK (is_proposer IN (0, 1)),
    state           TEXT NOT NULL CHECK (state IN
                      ('proposed', 'pending', 'active', 'rejected', 'frozen', 'closed')),
    limit_out       INTEGER NOT NULL CHECK (limit_out >= 0),
    limit_in        INTEGER NOT NULL CHECK (limit_in >= 0),
    rate            TEXT NOT NULL,
    peer_decimals   INTEGER,
    agreement       TEXT,
    intent          TEXT CHECK (intent IN ('offer', 'accept', 'reject', 'update')),
    pending_change  TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;
CREATE INDEX iou_lines_peer ON iou_lines(peer_actor, state);
CREATE INDEX iou_lines_intent ON iou_lines(intent) WHERE intent IS NOT NULL;

-- One row per cross-node transfer this node takes part in, keyed by the transfer id.
-- role: 'origin' (payer's node), 'hop' (intermediate) or 'final' (payee's node, decides).
-- A row in a final state never changes again: late or repeated messages find it and stop.
CREATE TABLE iou_transfers (
    id              TEXT PRIMARY KEY,
    role            TEXT NOT NULL CHECK (role IN ('origin', 'hop', 'final')),
    state           TEXT NOT NULL CHECK (state IN ('prepared', 'committed', 'released',
                                                   'expired')),
    in_line         TEXT REFERENCES iou_lines(id),
    out_line        TEXT REFERENCES iou_lines(id),
    payer           TEXT NOT NULL,
    payee           TEXT NOT NULL,
    debit_account   TEXT,
    credit_account  TEXT,
    amount          INTEGER NOT NULL CHECK (amount >= 0),
    in_amount       INTEGER,
    out_amount      INTEGER,
    memo            TEXT NOT NULL,
    listing_id      TEXT,
    route           TEXT NOT NULL,
    entry_document  TEXT,
    reason          TEXT,
    expires_at      TEXT NOT NULL,
    release_sent    INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    decided_at      TEXT
) STRICT;
CREATE INDEX iou_transfers_state ON iou_transfers(state, role, expires_at);

-- What each committed transfer did to a line: our account's change (our units) and the
-- peer's account change (their units). Mirror invariant: our sums equal theirs, crosswise.
CREATE TABLE iou_line_moves (
    seq          INTEGER PRIMARY KEY,
    line_id      TEXT NOT NULL REFERENCES iou_lines(id),
    transfer_id  TEXT NOT NULL,
    local_delta  INTEGER NOT NULL,
    peer_delta   INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (line_id, transfer_id)
) STRICT;

-- The last reconciliation of each line with the peer's signed statement.
CREATE TABLE iou_reconciliations (
    line_id      TEXT PRIMARY KEY REFERENCES iou_lines(id),
    status       TEXT NOT NULL CHECK (status IN ('match', 'mismatch', 'in_flight')),
    detail       TEXT NOT NULL,
    only_ours    TEXT NOT NULL,
    only_theirs  TEXT NOT NULL,
    statement    TEXT NOT NULL,
    checked_at   TEXT NOT NULL
) STRICT;
