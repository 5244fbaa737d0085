-- The event-sourcing core of one service database (SQLite dialect).
-- Times are INTEGER microseconds since the Unix epoch.

-- Every event of every stream. global_position is the commit order: SQLite
-- has one writer at a time, so rowids are handed out in commit order.
CREATE TABLE events (
    global_position INTEGER PRIMARY KEY,
    stream          TEXT    NOT NULL,
    category        TEXT    NOT NULL,
    version         INTEGER NOT NULL CHECK (version >= 1),
    event_id        BLOB    NOT NULL,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    payload         TEXT    NOT NULL,
    correlation_id  BLOB,
    causation_id    BLOB,
    occurred_at_us  INTEGER NOT NULL,
    recorded_at_us  INTEGER NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (stream, version),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);
CREATE INDEX events_by_category ON events (category, global_position);
CREATE INDEX events_by_correlation ON events (correlation_id) WHERE correlation_id IS NOT NULL;

-- The newest snapshot of a stream. Written in the same transaction as the
-- events it folds, so it is never ahead of them.
CREATE TABLE snapshots (
    stream         TEXT    PRIMARY KEY,
    version        INTEGER NOT NULL,
    state_schema   INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    taken_at_us    INTEGER NOT NULL
) WITHOUT ROWID;

-- Records waiting for the relay, written in the transaction of their events.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    message_id       BLOB    NOT NULL,
    topic            TEXT    NOT NULL,
    key              TEXT    NOT NULL,
    headers          TEXT    NOT NULL,
    payload          BLOB    NOT NULL,
    created_at_us    INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    claimed_by       TEXT,
    claimed_until_us INTEGER,
    published_at_us  INTEGER,
    CONSTRAINT outbox_message_id_key UNIQUE (message_id)
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at_us IS NULL;
CREATE INDEX outbox_published ON outbox (published_at_us) WHERE published_at_us IS NOT NULL;

-- Which events each consumer has handled, for deduplication.
CREATE TABLE inbox (
    consumer       TEXT    NOT NULL,
    event_id       BLOB    NOT NULL,
    received_at_us INTEGER NOT NULL,
    PRIMARY KEY (consumer, event_id)
) WITHOUT ROWID;
CREATE INDEX inbox_by_received ON inbox (received_at_us);

-- Where each consumer resumes, stored in the transaction of its effects.
CREATE TABLE consumer_positions (
    consumer      TEXT    NOT NULL,
    topic         TEXT    NOT NULL,
    partition     INTEGER NOT NULL,
    next_offset   INTEGER NOT NULL,
    updated_at_us INTEGER NOT NULL,
    PRIMARY KEY (consumer, topic, partition)
) WITHOUT ROWID;
