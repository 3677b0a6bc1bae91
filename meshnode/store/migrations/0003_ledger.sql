-- Mutual-credit ledger (REFERENCE.md §6): accounts, an append-only hash-chained journal,
-- payment requests and the holds they place on limits.

-- One account per member (kind 'member', named after the username, created by trigger) plus
-- system accounts such as the community fund 'sys:fund' (kind 'system'; usernames cannot
-- contain ':'). ``balance`` is a cache of the journal, updated in the
-- same transaction as every append; ``ledger verify`` recomputes it from the entries.
-- ``min_balance``/``max_balance`` NULL means "the currency's default" for members and
-- "unlimited" for system accounts.
CREATE TABLE ledger_accounts (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL CHECK (kind IN ('member', 'system')),
    member_id    INTEGER UNIQUE REFERENCES members(id),
    balance      INTEGER NOT NULL DEFAULT 0,
    min_balance  INTEGER,
    max_balance  INTEGER,
    created_at   TEXT NOT NULL,
    CHECK ((kind = 'member') = (member_id IS NOT NULL)),
    CHECK (min_balance IS NULL OR min_balance <= 0),
    CHECK (max_balance IS NULL OR max_balance >= 0)
) STRICT;

INSERT INTO ledger_accounts (name, kind, member_id, created_at)
    SELECT username, 'member', id, created_at FROM members;
INSERT INTO ledger_accounts (name, kind, created_at)
    VALUES ('sys:fund', 'system', strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));

CREATE TRIGGER ledger_member_account AFTER INSERT ON members BEGIN
    INSERT INTO ledger_accounts (name, kind, member_id, created_at)
    VALUES (new.username, 'member', new.id, new.created_at);
END;

-- The journal: one row per committed transaction, never updated nor deleted.
-- ``hash`` = SHA-256(JCS({prev, entry fields, signed document})), see protocol/ledger.py.
CREATE TABLE ledger_journal (
    seq            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    kind           TEXT NOT NULL CHECK (kind IN ('payment', 'request', 'reversal', 'admin')),
    payer_account  TEXT NOT NULL REFERENCES ledger_accounts(name),
    payee_account  TEXT NOT NULL REFERENCES ledger_accounts(name),
    amount         INTEGER NOT NULL CHECK (amount > 0),
    memo           TEXT NOT NULL,
    listing_id     TEXT,
    reverses       TEXT REFERENCES ledger_journal(id),
    request_id     TEXT,
    signer         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    document       TEXT NOT NULL,
    prev_hash      TEXT NOT NULL,
    hash           TEXT NOT NULL UNIQUE,
    CHECK (payer_account <> payee_account)
) STRICT;
CREATE INDEX ledger_journal_payer ON ledger_journal(payer_account, seq);
CREATE INDEX ledger_journal_payee ON ledger_journal(payee_account, seq);
CREATE UNIQUE INDEX ledger_journal_reverses ON ledger_journal(reverses) WHERE reverses IS NOT NULL;

-- The chain head (one row), moved by the trigger below with each append, so removing the
-- last entries is detected too.
CREATE TABLE ledger_head (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    seq        INTEGER NOT NULL,
    hash       TEXT NOT NULL
) STRICT;
INSERT INTO ledger_head (singleton, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- A row that does not extend the recorded head is refused: the chain can never fork.
CREATE TRIGGER ledger_journal_extends_head BEFORE INSERT ON ledger_journal BEGIN
    SELECT RAISE(ABORT, 'journal entry does not extend the chain head')
    WHERE new.seq <> (SELECT seq FROM ledger_head) + 1
       OR new.prev_hash <> (SELECT hash FROM ledger_head);
END;

-- Balances and head move with the insert itself: no journal row without its effects.
CREATE TRIGGER ledger_journal_apply AFTER INSERT ON ledger_journal BEGIN
    UPDATE ledger_accounts SET balance = balance - new.amount WHERE name = new.payer_account;
    UPDATE ledger_accounts SET balance = balance + new.amount WHERE name = new.payee_account;
    UPDATE ledger_head SET seq = new.seq, hash = new.hash WHERE singleton = 1;
END;

CREATE TRIGGER ledger_journal_no_update BEFORE UPDATE ON ledger_journal BEGIN
    SELECT RAISE(ABORT, 'ledger_journal is append-only');
END;
CREATE TRIGGER ledger_journal_no_delete BEFORE DELETE ON ledger_journal BEGIN
    SELECT RAISE(ABORT, 'ledger_journal is append-only');
END;


-- Bills: the payee asks, the payer approves or declines before ``expires_at``.
CREATE TABLE ledger_requests (
    id             TEXT PRIMARY KEY,
    payer_account  TEXT NOT NULL REFERENCES ledger_accounts(name),
    payee_account  TEXT NOT NULL REFERENCES ledger_accounts(name),
    amount         INTEGER NOT NULL CHECK (amount > 0),
    memo           TEXT NOT NULL,
    listing_id     TEXT,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'declined', 'expired')),
    document       TEXT NOT NULL,
    decision       TEXT,
    created_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    decided_at     TEXT
) STRICT;
CREATE INDEX ledger_requests_payer ON ledger_requests(payer_account, status, created_at);
CREATE INDEX ledger_requests_payee ON ledger_requests(payee_account, status, created_at);

-- Amounts reserved against an account's limits by something not yet committed (a pending
-- request reserves the payee's receiving room; later, a prepared cross-node transfer will
-- reserve the payer's spending room). A hold past ``expires_at`` no longer counts.
CREATE TABLE ledger_holds (
    id          TEXT PRIMARY KEY,
    account     TEXT NOT NULL REFERENCES ledger_accounts(name),
    direction   TEXT NOT NULL CHECK (direction IN ('debit', 'credit')),
    amount      INTEGER NOT NULL CHECK (amount > 0),
    reason      TEXT NOT NULL,
    expires_at  TEXT NOT NULL
) STRICT;
CREATE INDEX ledger_holds_account ON ledger_holds(account, direction, expires_at);

-- Admin limit changes, for the audit trail (the account row holds the current value).
CREATE TABLE ledger_limit_changes (
    id           INTEGER PRIMARY KEY,
    account      TEXT NOT NULL REFERENCES ledger_accounts(name),
    min_balance  INTEGER,
    max_balance  INTEGER,
    changed_by   TEXT NOT NULL,
    changed_at   TEXT NOT NULL
) STRICT;
