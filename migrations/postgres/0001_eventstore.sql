-- The event-sourcing core of one service database (PostgreSQL dialect).

-- Every event of every stream. global_position is the commit order: appends
-- take a transaction-scoped advisory lock before they draw a position, and
-- hold it until commit, so positions become visible in increasing order and a
-- reader paging by position never skips a late commit. CACHE 1 keeps the
-- sequence monotonic across sessions.
CREATE TABLE events (
    global_position BIGINT GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
    stream          TEXT        NOT NULL,
    category        TEXT        NOT NULL,
    version         BIGINT      NOT NULL CHECK (version >= 1),
    event_id        UUID        NOT NULL,
    event_type      TEXT        NOT NULL,
    schema_version  INT         NOT NULL,
    payload         JSONB       NOT NULL,
    correlation_id  UUID,
    causation_id    UUID,
    occurred_at_us  BIGINT      NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version_key UNIQUE (stream, version),
    CONSTRAINT events_event_id_key UNIQUE (event_id)
);
CREATE INDEX events_by_category ON events (category, global_position);
CREATE INDEX events_by_correlation ON events (correlation_id) WHERE correlation_id IS NOT NULL;

-- The newest snapshot of a stream, written with the events it folds.
CREATE TABLE snapshots (
    stream       TEXT        PRIMARY KEY,
    version      BIGINT      NOT NULL,
    state_schema INT         NOT NULL,
    state        JSONB       NOT NULL,
    taken_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Records waiting for the relay. Claimed with FOR UPDATE SKIP LOCKED and a
-- lease: a claim whose relay dies expires and is claimed again.
CREATE TABLE outbox (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id    UUID        NOT NULL,
    topic         TEXT        NOT NULL,
    key           TEXT        NOT NULL,
    headers       JSONB       NOT NULL,
    payload       BYTEA       NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts      INT         NOT NULL DEFAULT 0,
    claimed_by    TEXT,
    claimed_until TIMESTAMPTZ,
    published_at  TIMESTAMPTZ,
    CONSTRAINT outbox_message_id_key UNIQUE (message_id)
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE INDEX outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Which events each consumer has handled, for deduplication.
CREATE TABLE inbox (
    consumer    TEXT        NOT NULL,
    event_id    UUID        NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX inbox_by_received ON inbox (received_at);

-- Where each consumer resumes, stored in the transaction of its effects.
CREATE TABLE consumer_positions (
    consumer    TEXT        NOT NULL,
    topic       TEXT        NOT NULL,
    partition   INT         NOT NULL,
    next_offset BIGINT      NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, topic, partition)
);
