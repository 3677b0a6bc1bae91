-- A host that answered a delivery 429 / 503 ("wait") is paused until the time it gave
-- (its Retry-After, or the backoff; at most protocol.retry.MAX_HOST_PAUSE): while paused,
-- none of its deliveries is sent (issue 17, pause22). One row per host; a 2xx from the host
-- ends the pause early. Rows past their time are deleted when a pause is set, and at most
-- federation.delivery.MAX_PAUSED_HOSTS are kept.
CREATE TABLE delivery_pauses (
    host          TEXT PRIMARY KEY,
    paused_until  TEXT NOT NULL,
    status        INTEGER NOT NULL,
    since         TEXT NOT NULL
) STRICT;
