-- Payments of deals whose parties live on two nodes (cross-community IOUs, services/iou.py).
-- One row per deal and paying action (accept, or complete/dispute for loans), on both nodes:
-- the booker's node pays (due → pending → paid | failed); the author's node waits
-- (pending) until the booker's signed notice names a transfer it committed as payee (paid),
-- or the deal is cancelled because the payment was refused (failed).
CREATE TABLE deal_payments (
    deal_id      TEXT NOT NULL REFERENCES deals(id),
    action       TEXT NOT NULL,
    side         TEXT NOT NULL CHECK (side IN ('payer', 'payee')),
    amount       INTEGER NOT NULL CHECK (amount > 0),
    state        TEXT NOT NULL CHECK (state IN ('due', 'pending', 'paid', 'failed')),
    transfer_id  TEXT UNIQUE,
    reason       TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (deal_id, action)
) STRICT;
CREATE INDEX deal_payments_open ON deal_payments(state) WHERE state IN ('due', 'pending');
