-- PostgreSQL's part of step 1, after the common one (common/0001_journal.sql; times stay
-- ISO-8601 text there so both backends order and answer alike): an index for listing by
-- creation, and ``budgets``: one row per budget scope ('total', 'day:YYYY-MM-DD',
-- 'provider:NAME', 'session:ID') holding the scope's committed USD (settled cost once settled,
-- else the reservation), so a reservation is one conditional upsert per scope instead of a SUM.
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at, id);
CREATE TABLE IF NOT EXISTS budgets (
    scope TEXT PRIMARY KEY,
    committed_usd DOUBLE PRECISION NOT NULL DEFAULT 0
);
