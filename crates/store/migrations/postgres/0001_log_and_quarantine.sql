-- The event log (rows only ever appended) and the quarantine.
CREATE TABLE log (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source TEXT NOT NULL,
    line TEXT NOT NULL
);
CREATE TABLE quarantine (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at TEXT NOT NULL,
    source TEXT NOT NULL,
    route TEXT NOT NULL,
    waba TEXT,
    path TEXT NOT NULL,
    reason TEXT NOT NULL,
    item TEXT NOT NULL,
    body TEXT NOT NULL,
    -- SHA-256 of (source, route, path, item, body): a provider's retry of
    -- a held item is held once (bodies are too long for a unique index).
    fingerprint BYTEA NOT NULL UNIQUE
);
CREATE TABLE probe (
    id INTEGER PRIMARY KEY,
    pad BYTEA NOT NULL
);
