-- The journal as released in 0.1.0, written once for both backends: the float columns' type
-- is a placeholder that schema/__init__.py renders per dialect (REAL on SQLite, DOUBLE
-- PRECISION on PostgreSQL, whose REAL has 4 bytes). No version was recorded then: IF NOT
-- EXISTS makes this step a no-op on such a file, which is how a journal from that release is
-- adopted at version 1.
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
    reserved_usd {float} NOT NULL DEFAULT 0,
    settled_usd {float},
    webhook_hash TEXT,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_webhook ON jobs(webhook_hash);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    provider TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at {float} NOT NULL,
    PRIMARY KEY (provider, delivery_id)
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
CREATE INDEX IF NOT EXISTS jobs_digest ON jobs(request_digest);
CREATE INDEX IF NOT EXISTS jobs_task ON jobs(provider, task_id);
CREATE TABLE IF NOT EXISTS route_health (
    route TEXT PRIMARY KEY,
    failures TEXT NOT NULL DEFAULT '',
    cooldown_until {float} NOT NULL DEFAULT 0
);
