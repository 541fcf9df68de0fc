-- consentry migration 5: personal API tokens and their usage log. Shipped
-- migrations are never edited; add a new file instead.
-- Times are milliseconds since the Unix epoch; `tenant` is '' for none.
-- Scopes are stored space-separated (a scope never contains a space).

-- Only the SHA-256 of a token is kept, as the primary key: verification
-- is one point read on it.
CREATE TABLE consentry_api_tokens (
    hash         BLOB PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    tenant       TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    name         TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    active       INTEGER NOT NULL,
    revoked_at   INTEGER
) WITHOUT ROWID;

CREATE INDEX consentry_api_tokens_by_owner
    ON consentry_api_tokens (tenant, user_id, created_at);

-- `seq` is the rowid: increasing, newest last.
CREATE TABLE consentry_api_token_usage (
    seq       INTEGER PRIMARY KEY,
    token_id  TEXT NOT NULL,
    at        INTEGER NOT NULL,
    operation TEXT NOT NULL,
    outcome   TEXT NOT NULL
);

CREATE INDEX consentry_api_token_usage_by_token
    ON consentry_api_token_usage (token_id, seq);
