-- Events are stored before they are routed, actions before they are executed; each has a
-- unique idempotency key, so a re-read screen or a redelivered callback is stored once.
-- Plain SQL (TEXT/INTEGER, ON CONFLICT) that Postgres also accepts.

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    event_type TEXT NOT NULL,
    conversation TEXT,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    created_at TEXT NOT NULL
);
CREATE INDEX events_status ON events (status, created_at);

CREATE TABLE actions (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    event_id TEXT REFERENCES events (id),
    target TEXT NOT NULL,
    conversation TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX actions_status ON actions (status, created_at);

CREATE TABLE watermarks (
    device TEXT NOT NULL,
    conversation TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (device, conversation)
);
