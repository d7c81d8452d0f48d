-- Outbound subscriptions made through the REST API: events whose type matches one of
-- `events` (JSON array of patterns: `message.received`, `message.*`, `*`) are POSTed to
-- `url`, signed with a key derived from the environment (never stored here).
CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    events TEXT NOT NULL,
    created_at TEXT NOT NULL
);
