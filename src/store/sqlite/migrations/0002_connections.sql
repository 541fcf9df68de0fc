-- consentry migration 2: connections, consent, OAuth flows, leases,
-- revocations. Shipped migrations are never edited; add a new file instead.
-- Times are milliseconds since the Unix epoch; `tenant` is '' for none.

CREATE TABLE consentry_connections (
    tenant               TEXT NOT NULL,
    user_id              TEXT NOT NULL,
    id                   TEXT NOT NULL,
    connector            TEXT NOT NULL,
    account_id           TEXT NOT NULL,
    account_email        TEXT,
    account_name         TEXT,
    scopes               TEXT NOT NULL,          -- space-separated
    status               TEXT NOT NULL,
    access_expires_at    INTEGER,
    has_refresh_token    INTEGER NOT NULL,
    last_refresh_ok      INTEGER,
    last_refresh_failed  INTEGER,
    last_error           TEXT,
    consecutive_failures INTEGER NOT NULL,
    retry_after          INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    revision             INTEGER NOT NULL CHECK (revision > 0),
    PRIMARY KEY (tenant, user_id, id)
) WITHOUT ROWID;

-- One connection per user, connector and provider account.
CREATE UNIQUE INDEX consentry_connections_account
    ON consentry_connections (tenant, user_id, connector, account_id);

-- The proactive refresher's query.
CREATE INDEX consentry_connections_expiring
    ON consentry_connections (access_expires_at)
    WHERE has_refresh_token = 1 AND status IN ('active', 'degraded');

-- The append-only consent ledger, and the current state derived from it
-- (kept in the same transaction as each append).
CREATE TABLE consentry_consent_ledger (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant         TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    connection     TEXT NOT NULL,
    purpose        TEXT NOT NULL,
    granted        INTEGER NOT NULL,
    actor          TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    at             INTEGER NOT NULL
);

CREATE INDEX consentry_consent_ledger_by_connection
    ON consentry_consent_ledger (tenant, user_id, connection);

CREATE TABLE consentry_consent (
    tenant     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    connection TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    granted    INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (tenant, user_id, connection, purpose)
) WITHOUT ROWID;

-- Authorizations in progress, keyed by SHA-256(state). Nothing secret here.
CREATE TABLE consentry_oauth_pending (
    state_hash   BLOB PRIMARY KEY,
    tenant       TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    connector    TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    key_id       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX consentry_oauth_pending_expiry ON consentry_oauth_pending (expires_at);

CREATE TABLE consentry_leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Tokens of deleted connections still to be revoked at their provider.
-- `envelope` is the credential's vault envelope, moved here unchanged (its
-- associated data names the user, connection and kind kept in this row).
CREATE TABLE consentry_revocations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant          TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    connection      TEXT NOT NULL,
    connector       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    envelope        BLOB NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL
);

CREATE INDEX consentry_revocations_due ON consentry_revocations (next_attempt_at);
CREATE INDEX consentry_revocations_by_user ON consentry_revocations (tenant, user_id);
