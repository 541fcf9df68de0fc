-- The hash-chained audit log (consentry::audit). Entries are appended with
-- the chain's head in one transaction; a purge replaces the prefix it
-- deletes with a checkpoint.
CREATE TABLE consentry_audit (
    seq         INTEGER PRIMARY KEY,
    at          INTEGER NOT NULL,
    action      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    subject     TEXT,
    resource    TEXT,
    outcome     TEXT NOT NULL,
    details     TEXT NOT NULL,
    ip          TEXT,
    user_agent  TEXT,
    request_id  TEXT,
    key_id      TEXT NOT NULL,
    prev_hash   BLOB NOT NULL,
    hash        BLOB NOT NULL
);
CREATE INDEX consentry_audit_subject ON consentry_audit (subject, seq) WHERE subject IS NOT NULL;
CREATE INDEX consentry_audit_resource ON consentry_audit (resource, seq) WHERE resource IS NOT NULL;
CREATE INDEX consentry_audit_action ON consentry_audit (action, seq);

CREATE TABLE consentry_audit_head (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    seq     INTEGER NOT NULL,
    hash    BLOB NOT NULL,
    key_id  TEXT NOT NULL,
    mac     BLOB NOT NULL
);

CREATE TABLE consentry_audit_checkpoint (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    seq     INTEGER NOT NULL,
    hash    BLOB NOT NULL,
    purged  INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    key_id  TEXT NOT NULL,
    mac     BLOB NOT NULL
);
