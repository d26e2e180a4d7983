-- trailseal schema v1 (SQLite). Every log-data table is keyed by (project, log_id) first.
CREATE TABLE projects (
    project             TEXT PRIMARY KEY,
    created_at          TEXT NOT NULL,
    retention_days      INTEGER,
    monthly_event_limit INTEGER
);

CREATE TABLE signing_keys (
    project        TEXT NOT NULL REFERENCES projects(project),
    key_id         TEXT NOT NULL,
    public_key     BLOB NOT NULL,
    private_sealed BLOB NOT NULL,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (project, key_id)
);

CREATE TABLE api_keys (
    key_id       TEXT PRIMARY KEY,
    project      TEXT NOT NULL REFERENCES projects(project),
    key_hash     BLOB NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    organization TEXT,
    name         TEXT NOT NULL,
    test         INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);

CREATE TABLE logs (
    project      TEXT NOT NULL,
    log_id       TEXT NOT NULL,
    organization TEXT NOT NULL,
    origin       TEXT NOT NULL UNIQUE,
    size         INTEGER NOT NULL DEFAULT 0,
    chain_head   BLOB NOT NULL,
    peaks        BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    deleted_at   TEXT,
    PRIMARY KEY (project, log_id)
);
-- One live log per organization; retired logs keep their rows and their origin forever.
CREATE UNIQUE INDEX logs_live_organization ON logs (project, organization) WHERE deleted_at IS NULL;

-- The rowid is the database-wide commit order (SQLite has one writer): project-wide
-- listings and streams page on it without skipping late commits.
CREATE TABLE entries (
    rowid         INTEGER PRIMARY KEY,
    project       TEXT NOT NULL,
    log_id        TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    event_id      TEXT NOT NULL,
    entry         BLOB,
    leaf_hash     BLOB NOT NULL,
    chain_hash    BLOB NOT NULL,
    content_hash  BLOB NOT NULL,
    received_at   TEXT NOT NULL,
    occurred_at   TEXT NOT NULL,
    action        TEXT NOT NULL,
    actor_id      TEXT NOT NULL,
    actor_type    TEXT,
    actor_name    TEXT,
    resource_type TEXT,
    resource_id   TEXT,
    target_ids    TEXT,
    outcome       TEXT,
    tags          TEXT
);
-- Reads by position: proofs, ranges, verification, exports, per-log cursors; and one
-- organization's listings, since seq order is commit order within a log.
CREATE UNIQUE INDEX entries_log_seq ON entries (project, log_id, seq);
-- The (project, id) -> (log, seq) id index; also enforces "unique within a project forever".
CREATE UNIQUE INDEX entries_event_id ON entries (project, event_id);
-- Actor timelines in commit order (actor id [+ action prefix/exact] [+ time range]): the
-- scan runs newest rowid first and stops after one page; occurred_at and action ride in
-- the index so a range or action filter is checked without reading the row. Replaces an
-- (actor_id, occurred_at) index, which must sort every row of the range by rowid (500 ms
-- for a busy actor's month at 1M entries, against < 30 ms worst case here).
CREATE INDEX entries_actor_commit ON entries (project, actor_id, rowid, occurred_at, action);

-- Full-text search over message, action, names and metadata. Contentless: the text is
-- derived from the entry bytes, so it is not stored twice; redaction deletes it by value.
CREATE VIRTUAL TABLE entries_fts USING fts5 (body, content = '', tokenize = 'unicode61 remove_diacritics 2');

-- C2SP tlog-tiles bottom rows (height 8); a row grows until it holds 256 hashes, then
-- never changes.
CREATE TABLE tiles (
    project TEXT NOT NULL,
    log_id  TEXT NOT NULL,
    level   INTEGER NOT NULL,
    idx     INTEGER NOT NULL,
    hashes  BLOB NOT NULL,
    PRIMARY KEY (project, log_id, level, idx)
) WITHOUT ROWID;

CREATE TABLE checkpoints (
    project    TEXT NOT NULL,
    log_id     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    root_hash  BLOB NOT NULL,
    note       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (project, log_id, size)
) WITHOUT ROWID;

-- Per-log state a façade keeps inside the append transaction (e.g. Pangea's second tree).
CREATE TABLE log_state (
    project TEXT NOT NULL,
    log_id  TEXT NOT NULL,
    facade  TEXT NOT NULL,
    state   BLOB NOT NULL,
    PRIMARY KEY (project, log_id, facade)
) WITHOUT ROWID;

CREATE TABLE receipts (
    project      TEXT NOT NULL,
    receipt_id   TEXT NOT NULL,
    state        TEXT NOT NULL,
    organization TEXT NOT NULL,
    log_id       TEXT,
    event_ids    BLOB NOT NULL,
    error        TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    PRIMARY KEY (project, receipt_id)
) WITHOUT ROWID;

-- Durable intake: events acknowledged with 202 while the sequencer was behind.
CREATE TABLE intake (
    intake_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    project      TEXT NOT NULL,
    organization TEXT NOT NULL,
    receipt_id   TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    events       BLOB NOT NULL
);

-- Request-level idempotency (the Idempotency-Key header).
CREATE TABLE idempotency (
    project      TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash BLOB NOT NULL,
    response     BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (project, key)
) WITHOUT ROWID;

-- Events appended per project and calendar month (UTC), kept in the append transaction.
CREATE TABLE usage_counters (
    project TEXT NOT NULL,
    month   TEXT NOT NULL,
    events  INTEGER NOT NULL,
    PRIMARY KEY (project, month)
);
