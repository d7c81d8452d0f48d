-- A conversation's recent messages (group digests, the API's conversation view) are read
-- newest first per source and conversation.
CREATE INDEX events_conversation ON events (source, conversation, created_at);
