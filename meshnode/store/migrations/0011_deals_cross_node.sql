-- Cross-node deals, second part (services/deal_payments.py): refunds (action 'refund', paid
-- by the author's node back to the booker) and retries. A refund the trust lines refuse for
-- now (limit, capacity) is tried again later: ``attempts`` and ``next_attempt_at`` pace it.
ALTER TABLE deal_payments ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deal_payments ADD COLUMN next_attempt_at TEXT;
