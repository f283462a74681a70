-- The journal, as on SQLite (times stay ISO-8601 text so both order and answer alike), plus
-- ``budgets``: one row per budget scope ('total', 'day:YYYY-MM-DD', 'provider:NAME',
-- 'session:ID') holding the scope's committed USD (settled cost once settled, else the
-- reservation), so a reservation is one conditional upsert per scope instead of a SUM.
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL,
    task_id TEXT,
    request_digest TEXT,
    session TEXT,
    day TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    reserved_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    settled_usd DOUBLE PRECISION,
    webhook_hash TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_webhook ON jobs(webhook_hash);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE INDEX IF NOT EXISTS jobs_digest ON jobs(request_digest);
CREATE INDEX IF NOT EXISTS jobs_task ON jobs(provider, task_id);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs(created_at, id);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    provider TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (provider, delivery_id)
);
CREATE TABLE IF NOT EXISTS route_health (
    route TEXT PRIMARY KEY,
    failures TEXT NOT NULL DEFAULT '',
    cooldown_until DOUBLE PRECISION NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS budgets (
    scope TEXT PRIMARY KEY,
    committed_usd DOUBLE PRECISION NOT NULL DEFAULT 0
);
