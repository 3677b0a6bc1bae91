-- Inbox marks in a table of their own (issue 17): marking a processed activity rewrote its
-- whole row (the ~3 KB body with it: a page written again to the WAL per activity) and two
-- indexes; a mark is now a ~60-byte row of inbox_marks. The inbox worker processes
-- activities in seq order and marks each batch whole, so the marked rows are a prefix and
-- the unprocessed ones are those above the last mark (store.federation.unprocessed).
-- ``inbox_activities`` stays readable as before, as a view joining the two.
DROP INDEX inbox_unprocessed;
DROP INDEX inbox_processed_at;
ALTER TABLE inbox_activities RENAME TO inbox_rows;
CREATE TABLE inbox_marks (
    seq           INTEGER PRIMARY KEY,  -- inbox_rows.seq
    processed_at  TEXT NOT NULL,
    outcome       TEXT NOT NULL
) STRICT;
-- Pruning takes the oldest marks first (as inbox_processed_at did for the old columns).
CREATE INDEX inbox_marks_processed_at ON inbox_marks(processed_at);
-- Only the processed prefix is carried over: a processed row above an unprocessed one (none
-- is expected) is processed again, which has no further effect (ids and versions dedupe).
INSERT INTO inbox_marks (seq, processed_at, outcome)
SELECT seq, processed_at, coalesce(outcome, '') FROM inbox_rows
WHERE processed_at IS NOT NULL
  AND seq < coalesce((SELECT min(seq) FROM inbox_rows WHERE processed_at IS NULL),
                     9223372036854775807);
ALTER TABLE inbox_rows DROP COLUMN processed_at;
ALTER TABLE inbox_rows DROP COLUMN outcome;
-- A row's mark goes with it (pruning, and any other deletion).
CREATE TRIGGER inbox_rows_deleted AFTER DELETE ON inbox_rows BEGIN
    DELETE FROM inbox_marks WHERE seq = old.seq;
END;
CREATE VIEW inbox_activities AS
SELECT r.seq, r.activity_id, r.actor, r.type, r.body, r.received_at, m.processed_at,
       m.outcome, r.origin, r.size
FROM inbox_rows r LEFT JOIN inbox_marks m ON m.seq = r.seq;
