-- Who may use which command, until when. scene '*' grants everything; command '' the
-- whole scene. Empty strings rather than NULLs keep the primary key meaningful on both
-- SQLite and Postgres (NULLs are never equal to each other in a unique key).
CREATE TABLE permissions (
    user_id TEXT NOT NULL,
    scene TEXT NOT NULL,
    command TEXT NOT NULL DEFAULT '',
    expires_at TEXT,
    granted_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (user_id, scene, command)
);

-- Events a handler gave up on (a webhook past its retries). The body is the event as
-- that handler received it (a prefix handler gets the text without its prefix), so
-- `tapwire dlq replay` delivers exactly what failed.
CREATE TABLE dead_letters (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES events (id),
    handler TEXT NOT NULL,
    body TEXT NOT NULL,
    error TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'dead',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (event_id, handler)
);
CREATE INDEX dead_letters_status ON dead_letters (status, created_at);
