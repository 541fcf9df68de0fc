-- Shared rate limits: one GCRA theoretical arrival time (TAT) per key, in
-- nanoseconds since the Unix epoch. Changed only by compare-and-swap; a TAT
-- in the past means the same as no row, so expired rows may be deleted.
CREATE TABLE consentry_rate_limits (
    key TEXT PRIMARY KEY NOT NULL,
    tat INTEGER NOT NULL
) WITHOUT ROWID;

-- Purging expired rows reads only them.
CREATE INDEX consentry_rate_limits_by_tat ON consentry_rate_limits (tat);
