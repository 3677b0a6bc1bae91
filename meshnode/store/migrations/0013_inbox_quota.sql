-- Inbox quotas and retention: each row records its sender's origin and its size, so the
-- per-origin hourly quota is a range scan (and survives a restart); processed rows are
-- pruned after federation.inbox_retention_days.
ALTER TABLE inbox_activities ADD COLUMN origin TEXT NOT NULL DEFAULT '';
ALTER TABLE inbox_activities ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
UPDATE inbox_activities SET size = length(CAST(body AS BLOB)),
    origin = CASE WHEN instr(substr(actor, 9), '/') > 0
                  THEN substr(actor, 1, instr(substr(actor, 9), '/') + 7) ELSE actor END;
CREATE INDEX inbox_origin_received ON inbox_activities(origin, received_at, size);
CREATE INDEX inbox_processed_at ON inbox_activities(processed_at) WHERE processed_at IS NOT NULL;
