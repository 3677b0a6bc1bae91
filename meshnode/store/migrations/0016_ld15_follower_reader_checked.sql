-- When a Group follower's reader ('proposal' or 'note', migration 0015) was decided (issue 15).
-- Followers recorded before 0015 got 'proposal' by default without being classified: every
-- row existing now is NULL, and federation/readers.py: ReaderWorker classifies each accepted
-- follower of the community once (NodeInfo software.name / actor @context), then stamps it.
-- A Follow accepted from now on is classified when it arrives and stamped at once.
ALTER TABLE followers ADD COLUMN reader_checked_at TEXT;
CREATE INDEX followers_reader_unchecked ON followers(local_actor, remote_actor)
    WHERE reader_checked_at IS NULL;
