-- When catch-up from a peer was last tried, successful or not (issue 20): a failed pull waits
-- one catch-up period instead of being retried at every sync poll while the peer is down.
ALTER TABLE peers ADD COLUMN last_sync_attempt_at TEXT;
