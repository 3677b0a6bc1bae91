-- When the author last edited a listing (title, text, price, dates, photos, status...), as
-- opposed to a new version that only moves what is left (a booking changes the FEP-0837
-- availableQuantity, and the status when it fills up): the listing page shows "Modifiée le"
-- from this, not from updated_at. Rows edited before this migration cannot be told apart:
-- every listing with more than one version keeps its last update as its edit date.
ALTER TABLE listings ADD COLUMN edited_at TEXT;
UPDATE listings SET edited_at = updated_at WHERE version > 1;
