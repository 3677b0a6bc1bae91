-- At every start the node looks for its own offers whose signed version publishes no
-- availableQuantity (services/capacity.publish_missing, a one-off after the upgrade that
-- added it). available_quantity is a VIRTUAL column read out of signed_object, so that look-up
-- parsed the JSON of every local listing at every start (about 1 s with 100,000 listings,
-- issue 17). This partial index holds only the rows still to publish: usually none.
CREATE INDEX listings_unpublished_figure ON listings(category)
    WHERE is_local = 1 AND kind = 'offer' AND available_quantity IS NULL;
