-- An LLM handler's memory: the last turns of each conversation it talks in, so a
-- restart does not make it forget. `key` names the handler and the conversation; `seq`
-- orders the turns (the newest kept, older ones deleted as new ones come).
CREATE TABLE llm_turns (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX llm_turns_key ON llm_turns (key, seq);
