-- Payments stated in the payee's currency, and reconciliation that names the transfers whose
-- amounts differ between the two nodes.

-- The amount the payee receives (payee's minor units and decimals) when the payer stated it
-- that way (``amount_in = "payee"``); NULL for payments stated in the payer's currency.
ALTER TABLE iou_transfers ADD COLUMN payee_amount INTEGER;
ALTER TABLE iou_transfers ADD COLUMN payee_decimals INTEGER;

-- Transfers both nodes list for a line but with different amounts (JSON list of
-- {"transfer", "ours": [local, peer], "theirs": [local, peer]}).
ALTER TABLE iou_reconciliations ADD COLUMN differing TEXT NOT NULL DEFAULT '[]';
