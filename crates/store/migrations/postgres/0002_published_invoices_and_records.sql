-- What the service bills, for other systems to read (docs/spec/store.md):
-- one row per WABA-month invoice and one per conversation record, replaced
-- whole when the month is billed again (revision + 1).
CREATE TABLE invoices (
    waba TEXT NOT NULL,
    month TEXT NOT NULL,
    currency TEXT NOT NULL,
    meta_total NUMERIC NOT NULL,
    amount_due NUMERIC NOT NULL,
    revision INTEGER NOT NULL,
    published_at TIMESTAMPTZ NOT NULL,
    digest BYTEA NOT NULL,
    invoice JSONB NOT NULL,
    PRIMARY KEY (waba, month)
);
CREATE TABLE conversation_records (
    waba TEXT NOT NULL,
    month TEXT NOT NULL,
    n INTEGER NOT NULL,
    phone TEXT NOT NULL,
    user_id TEXT NOT NULL,
    start_at TIMESTAMPTZ NOT NULL,
    end_at TIMESTAMPTZ NOT NULL,
    era TEXT NOT NULL,
    category TEXT NOT NULL,
    market TEXT NOT NULL,
    free TEXT NOT NULL,
    unit_price NUMERIC NOT NULL,
    opened_by TEXT NOT NULL,
    messages INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    record JSONB NOT NULL,
    PRIMARY KEY (waba, month, n)
);
