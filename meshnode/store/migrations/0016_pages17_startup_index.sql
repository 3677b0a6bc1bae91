-- Look-ups the node runs at start-up and then every few seconds read every listing without
-- these indexes: with 100,000 listings they held the one reader connection for about a
-- second after each start, so the first page waited (issue 17, "Startup < 1 s").

-- Our offers whose signed version publishes no availableQuantity (services/capacity.
-- publish_missing, a one-off after the upgrade that added it). available_quantity is a
-- VIRTUAL column read out of signed_object: the look-up parsed the JSON of every local
-- listing (100 ms with 100,000). Only the rows still to publish are here: usually none.
CREATE INDEX listings_unpublished_figure ON listings(category)
    WHERE is_local = 1 AND kind = 'offer' AND available_quantity IS NULL;

-- Listing versions whose signature check is not kept yet (store/trust.unchecked_listings,
-- the names worker's back-fill): 480 ms by a scan of every listing, 1 ms from this index.
CREATE INDEX listing_versions_unchecked ON listing_versions(listing_id, version)
    WHERE verified IS NULL;

-- Our listings by expiry (store/notifications.expiring_unwarned, "your listing expires
-- soon"): 180 ms by a scan with 100,000 listings, 0.1 ms with this index.
CREATE INDEX IF NOT EXISTS listings_local_expiry ON listings(expires_at) WHERE is_local = 1;  -- also made by 0016_alerts18_alerts
