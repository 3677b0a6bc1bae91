-- Account deletion (RGPD, issue 19): one row per member whose deletion was asked, stepped by
-- the deletion worker through protocol/account_deletion.py's states; a node killed mid-way
-- resumes from ``state``. The row stays after 'done' as the record that it happened (no
-- personal data: the member row itself is anonymised).
CREATE TABLE account_deletions (
    member_id     INTEGER PRIMARY KEY REFERENCES members(id),
    pseudonym     TEXT NOT NULL UNIQUE,
    state         TEXT NOT NULL CHECK (state IN ('listings', 'messages', 'deals', 'draining',
                                                 'erase', 'done')),
    requested_at  TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    finished_at   TEXT
) STRICT;
CREATE INDEX account_deletions_open ON account_deletions(state) WHERE state <> 'done';
