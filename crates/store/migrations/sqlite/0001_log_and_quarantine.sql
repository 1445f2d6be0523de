-- The event log (rows only ever appended) and the quarantine. IF NOT
-- EXISTS: stores made before migrations were versioned have these tables.
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    line TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    source TEXT NOT NULL,
    route TEXT NOT NULL,
    waba TEXT,
    path TEXT NOT NULL,
    reason TEXT NOT NULL,
    item TEXT NOT NULL,
    body TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX IF NOT EXISTS quarantine_once ON quarantine (source, route, path, item, body);
CREATE TABLE IF NOT EXISTS probe (
    id INTEGER PRIMARY KEY,
    pad BLOB NOT NULL
) STRICT;
