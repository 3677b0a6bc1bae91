-- Idempotency-Key on creating POSTs of the JSON API (web/idempotency.py).
-- One row per (owner, key): owner is the SHA-256 of the request's Authorization header, so
-- two members (two tokens) never share a key. ``request_hash`` is the SHA-256 of method, path
-- and body: the same key with another request is refused (422).
-- state: 'pending'   claimed by the process ``boot`` and running now;
--        'committed' the request's first write transaction committed (set in that same
--                    transaction), its answer not recorded yet;
--        'done'      the answer (status, headers, body) is stored and replayed on retry.
CREATE TABLE idempotency_keys (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'committed', 'done')),
    boot TEXT NOT NULL,
    status INTEGER,
    headers TEXT,
    body BLOB,
    created_at TEXT NOT NULL,
    PRIMARY KEY (owner, key)
) STRICT;

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
