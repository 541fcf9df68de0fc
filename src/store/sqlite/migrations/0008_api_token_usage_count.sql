-- consentry migration 8: a usage-log entry may stand for several identical
-- uses of one flush interval (`count` of them, from `first_at` to `at`;
-- `first_at` NULL means `at`). Shipped migrations are never edited.
ALTER TABLE consentry_api_token_usage ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE consentry_api_token_usage ADD COLUMN first_at INTEGER;
