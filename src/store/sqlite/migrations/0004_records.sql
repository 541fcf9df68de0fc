-- consentry migration 4: harvested records, stream sync state, the access
-- log, connection settings, field mappings, erasure tombstones. Shipped
-- migrations are never edited; add a new file instead.
-- Times are milliseconds since the Unix epoch; `tenant` is '' for none.
-- Purposes are stored as ' a b ' (a purpose never contains a space).

CREATE TABLE consentry_records (
    tenant      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    connection  TEXT NOT NULL,
    stream      TEXT NOT NULL,
    record_id   TEXT NOT NULL,
    kind        TEXT NOT NULL,
    data        TEXT NOT NULL,
    fetched_at  INTEGER NOT NULL,
    purposes    TEXT NOT NULL,
    generation  INTEGER NOT NULL
);

-- Upsert by provider id; reads in id order.
CREATE UNIQUE INDEX consentry_records_key
    ON consentry_records (tenant, user_id, connection, stream, record_id);

CREATE TABLE consentry_sync_state (
    tenant               TEXT NOT NULL,
    user_id              TEXT NOT NULL,
    connection           TEXT NOT NULL,
    stream               TEXT NOT NULL,
    connector            TEXT NOT NULL,
    cursor               TEXT,
    generation           INTEGER NOT NULL,
    full_sync            INTEGER NOT NULL,
    purposes             TEXT NOT NULL,
    status               TEXT NOT NULL,
    last_run_at          INTEGER,
    last_success_at      INTEGER,
    last_error           TEXT,
    consecutive_failures INTEGER NOT NULL,
    next_run_at          INTEGER,
    PRIMARY KEY (tenant, user_id, connection, stream)
) WITHOUT ROWID;

CREATE INDEX consentry_sync_state_due
    ON consentry_sync_state (next_run_at) WHERE next_run_at IS NOT NULL;

-- `seq` is the rowid: increasing, and (unlike AUTOINCREMENT) without a
-- second table to update on every read.
CREATE TABLE consentry_access_log (
    seq        INTEGER PRIMARY KEY,
    tenant     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    connection TEXT NOT NULL,
    stream     TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    component  TEXT NOT NULL,
    at         INTEGER NOT NULL,
    count      INTEGER NOT NULL
);

CREATE INDEX consentry_access_log_by_connection
    ON consentry_access_log (tenant, user_id, connection);

CREATE TABLE consentry_connection_settings (
    tenant     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    connection TEXT NOT NULL,
    settings   TEXT NOT NULL,
    PRIMARY KEY (tenant, user_id, connection)
) WITHOUT ROWID;

-- user_id and connection are '' for a tenant-wide mapping.
CREATE TABLE consentry_field_mappings (
    tenant     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    connection TEXT NOT NULL,
    stream     TEXT NOT NULL,
    mapping    TEXT NOT NULL,
    PRIMARY KEY (tenant, user_id, connection, stream)
) WITHOUT ROWID;

-- What is left of an erased user: a hash of their id, when, how much.
CREATE TABLE consentry_erasures (
    subject     TEXT PRIMARY KEY,
    erased_at   INTEGER NOT NULL,
    connections INTEGER NOT NULL,
    records     INTEGER NOT NULL
) WITHOUT ROWID;
