-- Which worker (host:pid) last held the job: shown by `talkinghead jobs list`.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS worker TEXT;
