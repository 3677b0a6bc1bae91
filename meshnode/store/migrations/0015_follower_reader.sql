-- Which document a follower reads (issue 15, "Readable from Mastodon"): 'proposal' for
-- meshnode nodes and FEP-0837 servers, 'note' for microblog servers such as Mastodon.
-- Decided once when the Follow is accepted (NodeInfo software.name, actor @context) and kept.
ALTER TABLE followers ADD COLUMN reader TEXT NOT NULL DEFAULT 'proposal'
    CHECK (reader IN ('proposal', 'note'));
