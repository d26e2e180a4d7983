-- trailseal schema v1 (PostgreSQL 15). Every log-data table is keyed by (project, log_id)
-- first, so logs can be sharded across clusters by log id without a schema change.
CREATE TABLE projects (
    project             text PRIMARY KEY,
    created_at          text NOT NULL,
    retention_days      integer,
    monthly_event_limit bigint,
    -- The project's commit counter: appends take this row's lock just before writing
    -- entries and hold it to COMMIT, so commit_seq follows commit order across all of the
    -- project's logs (project-wide cursors and streams never skip a late commit).
    next_commit         bigint NOT NULL DEFAULT 0
);

CREATE TABLE signing_keys (
    project        text NOT NULL REFERENCES projects(project),
    key_id         text NOT NULL,
    public_key     bytea NOT NULL,
    private_sealed bytea NOT NULL,
    created_at     text NOT NULL,
    PRIMARY KEY (project, key_id)
);

CREATE TABLE api_keys (
    key_id       text PRIMARY KEY,
    project      text NOT NULL REFERENCES projects(project),
    key_hash     bytea NOT NULL UNIQUE,
    scopes       text NOT NULL,
    organization text,
    name         text NOT NULL,
    test         boolean NOT NULL,
    created_at   text NOT NULL,
    revoked_at   text
);

CREATE TABLE logs (
    project      text NOT NULL,
    log_id       text NOT NULL,
    organization text NOT NULL,
    origin       text NOT NULL UNIQUE,
    size         bigint NOT NULL DEFAULT 0,
    chain_head   bytea NOT NULL,
    peaks        bytea NOT NULL,
    created_at   text NOT NULL,
    deleted_at   text,
    PRIMARY KEY (project, log_id)
);
CREATE UNIQUE INDEX logs_live_organization ON logs (project, organization) WHERE deleted_at IS NULL;

CREATE TABLE entries (
    project       text NOT NULL,
    log_id        text NOT NULL,
    seq           bigint NOT NULL,
    event_id      text NOT NULL,
    entry         bytea,
    leaf_hash     bytea NOT NULL,
    chain_hash    bytea NOT NULL,
    content_hash  bytea NOT NULL,
    received_at   text NOT NULL,
    occurred_at   text NOT NULL,
    action        text NOT NULL,
    actor_id      text NOT NULL,
    actor_type    text,
    actor_name    text,
    resource_type text,
    resource_id   text,
    target_ids    text,
    outcome       text,
    tags          text,
    search        tsvector,
    commit_seq    bigint NOT NULL,
    PRIMARY KEY (project, log_id, seq)
);
-- Project-wide listings, cursors and streams in commit order; also how a listing reads
-- the rows of the page of positions it found. (One organization's listings use the primary
-- key: seq order is commit order within a log.)
CREATE UNIQUE INDEX entries_commit ON entries (project, commit_seq);
-- The (project, id) -> (log, seq) id index; also enforces "unique within a project forever".
CREATE UNIQUE INDEX entries_event_id ON entries (project, event_id);
-- Actor timelines in commit order (actor id [+ action prefix/exact] [+ time range]): read
-- backwards, one page at a time; occurred_at and action are included so that shape is an
-- index-only scan (the listing picks positions first, then reads those rows). Replaces an
-- (actor_id, occurred_at) index, which must sort every row of the range by commit_seq.
CREATE INDEX entries_actor_commit ON entries (project, actor_id, commit_seq)
    INCLUDE (occurred_at, action);
-- Full-text search; fastupdate batches GIN maintenance behind the insert.
CREATE INDEX entries_search ON entries USING gin (search) WITH (fastupdate = on);

CREATE TABLE tiles (
    project text NOT NULL,
    log_id  text NOT NULL,
    level   integer NOT NULL,
    idx     bigint NOT NULL,
    hashes  bytea NOT NULL,
    PRIMARY KEY (project, log_id, level, idx)
);

CREATE TABLE checkpoints (
    project    text NOT NULL,
    log_id     text NOT NULL,
    size       bigint NOT NULL,
    root_hash  bytea NOT NULL,
    note       text NOT NULL,
    created_at text NOT NULL,
    PRIMARY KEY (project, log_id, size)
);

CREATE TABLE log_state (
    project text NOT NULL,
    log_id  text NOT NULL,
    facade  text NOT NULL,
    state   bytea NOT NULL,
    PRIMARY KEY (project, log_id, facade)
);

CREATE TABLE receipts (
    project      text NOT NULL,
    receipt_id   text NOT NULL,
    state        text NOT NULL,
    organization text NOT NULL,
    log_id       text,
    event_ids    bytea NOT NULL,
    error        text,
    created_at   text NOT NULL,
    updated_at   text NOT NULL,
    PRIMARY KEY (project, receipt_id)
);

CREATE TABLE intake (
    intake_id    bigserial PRIMARY KEY,
    project      text NOT NULL,
    organization text NOT NULL,
    receipt_id   text NOT NULL,
    received_at  text NOT NULL,
    events       bytea NOT NULL
);

CREATE TABLE idempotency (
    project      text NOT NULL,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    response     bytea NOT NULL,
    created_at   text NOT NULL,
    PRIMARY KEY (project, key)
);

-- Events appended per project and calendar month (UTC), kept in the append transaction.
CREATE TABLE usage_counters (
    project TEXT NOT NULL,
    month   TEXT NOT NULL,
    events  bigint NOT NULL,
    PRIMARY KEY (project, month)
);
