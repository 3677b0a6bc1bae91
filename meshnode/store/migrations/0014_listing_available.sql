-- What is left of a listing as its author's node published it (FEP-0837 availableQuantity on
-- the primary Intent of the stored signed Proposal), read straight from the signed document
-- so every way a version is stored (ours, a peer's Create/Update, a relay, catch-up) keeps it.
ALTER TABLE listings ADD COLUMN available_quantity ANY
    GENERATED ALWAYS AS (json_extract(signed_object, '$.publishes.availableQuantity')) VIRTUAL;
