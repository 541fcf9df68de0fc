-- consentry migration 3: the webhook dispatcher (endpoints, outbox,
-- deliveries with leases, attempt log) and the inbound replay guard.
-- Shipped migrations are never edited; add a new file instead.
-- Times are milliseconds since the Unix epoch.

-- `sealed` is a vault envelope of the endpoint's signing secrets and custom
-- headers; nothing secret is stored in clear. `event_types` is
-- space-separated, '' for all.
CREATE TABLE consentry_webhook_endpoints (
    id               TEXT PRIMARY KEY,
    url              TEXT NOT NULL,
    event_types      TEXT NOT NULL,
    enabled          INTEGER NOT NULL,
    disabled_reason  TEXT,
    rate_limit       INTEGER,
    sealed           BLOB NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    first_failure_at INTEGER,
    revision         INTEGER NOT NULL CHECK (revision > 0)
) WITHOUT ROWID;

CREATE TABLE consentry_webhook_messages (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    id                TEXT NOT NULL UNIQUE,
    event_type        TEXT NOT NULL,
    payload           BLOB NOT NULL,
    idempotency_key   TEXT,
    idempotency_until INTEGER,
    created_at        INTEGER NOT NULL
);

CREATE UNIQUE INDEX consentry_webhook_messages_idempotency
    ON consentry_webhook_messages (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX consentry_webhook_messages_created ON consentry_webhook_messages (created_at);

-- One row per message and endpoint (and per manual replay). A worker owns a
-- pending row while `lease_until` is in the future.
CREATE TABLE consentry_webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    message         TEXT NOT NULL REFERENCES consentry_webhook_messages (id) ON DELETE CASCADE,
    endpoint        TEXT NOT NULL REFERENCES consentry_webhook_endpoints (id) ON DELETE CASCADE,
    trigger         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER,
    lease_owner     TEXT,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL
);

CREATE INDEX consentry_webhook_deliveries_due
    ON consentry_webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX consentry_webhook_deliveries_by_message ON consentry_webhook_deliveries (message);
CREATE INDEX consentry_webhook_deliveries_by_endpoint
    ON consentry_webhook_deliveries (endpoint, created_at);

CREATE TABLE consentry_webhook_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery    INTEGER NOT NULL REFERENCES consentry_webhook_deliveries (id) ON DELETE CASCADE,
    message     TEXT NOT NULL,
    endpoint    TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    trigger     TEXT NOT NULL,
    status      INTEGER,
    error       TEXT,
    response    BLOB NOT NULL,
    duration_us INTEGER NOT NULL
);

-- The log of a message is read through its deliveries.
CREATE INDEX consentry_webhook_attempts_by_delivery ON consentry_webhook_attempts (delivery);

-- Delivery ids already received, per scope, until they expire.
CREATE TABLE consentry_webhook_replay (
    scope      TEXT NOT NULL,
    id         TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, id)
) WITHOUT ROWID;

CREATE INDEX consentry_webhook_replay_expiry ON consentry_webhook_replay (expires_at);
