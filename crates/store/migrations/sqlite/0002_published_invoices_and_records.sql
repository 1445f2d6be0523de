-- What the service bills, for other systems to read (docs/spec/store.md):
-- one row per WABA-month invoice and one per conversation record, replaced
-- whole when the month is billed again (revision + 1).
CREATE TABLE invoices (
    waba TEXT NOT NULL,
    month TEXT NOT NULL,
    currency TEXT NOT NULL,
    meta_total TEXT NOT NULL,
    amount_due TEXT NOT NULL,
    revision INTEGER NOT NULL,
    published_at TEXT NOT NULL,
    digest BLOB NOT NULL,
    invoice TEXT NOT NULL,
    PRIMARY KEY (waba, month)
) STRICT;
CREATE TABLE conversation_records (
    waba TEXT NOT NULL,
    month TEXT NOT NULL,
    n INTEGER NOT NULL,
    phone TEXT NOT NULL,
    user_id TEXT NOT NULL,
    start_at TEXT NOT NULL,
    end_at TEXT NOT NULL,
    era TEXT NOT NULL,
    category TEXT NOT NULL,
    market TEXT NOT NULL,
    free TEXT NOT NULL,
    unit_price TEXT NOT NULL,
    opened_by TEXT NOT NULL,
    messages INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (waba, month, n)
) STRICT;
