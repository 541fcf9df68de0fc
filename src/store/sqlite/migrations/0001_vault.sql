-- consentry migration 1: the vault.
-- Shipped migrations are never edited: their checksums are recorded in each
-- database they were applied to. Add a new file instead.

-- Per-user data keys, wrapped under a keyring key (`kek`). `tenant` is ''
-- for users without one.
CREATE TABLE consentry_data_keys (
    tenant   TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    id       TEXT NOT NULL,
    kek      TEXT NOT NULL,
    wrapped  BLOB NOT NULL,
    PRIMARY KEY (tenant, user_id)
) WITHOUT ROWID;

CREATE INDEX consentry_data_keys_by_kek ON consentry_data_keys (kek);

-- Sealed credentials. `envelope` is a vault envelope bound to this row's
-- tenant, user, connection and kind; `version` grows by one per write.
CREATE TABLE consentry_credentials (
    tenant      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    connection  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    envelope    BLOB NOT NULL,
    version     INTEGER NOT NULL CHECK (version > 0),
    PRIMARY KEY (tenant, user_id, connection, kind)
) WITHOUT ROWID;
