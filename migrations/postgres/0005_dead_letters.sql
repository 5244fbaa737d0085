-- Dead letters: records a consumer gave up on (malformed, or a handler that
-- kept failing), kept in the service's own database so that neither a
-- restart nor a broker that lost everything loses them. A row stays
-- `parked` until an operator replays it (`replayed`) or discards it
-- (`discarded`, with a note). Parked and stored with the consumer position
-- that passes the record, in one transaction.
CREATE TABLE dead_letters (
    id                 BIGSERIAL PRIMARY KEY,
    consumer           TEXT    NOT NULL,
    topic              TEXT    NOT NULL,
    partition_no       INTEGER NOT NULL,
    record_offset      BIGINT  NOT NULL,
    subject            TEXT,
    record_key         TEXT,
    reason             TEXT    NOT NULL,
    attempts           BIGINT  NOT NULL,
    first_failed_at_us BIGINT  NOT NULL,
    last_failed_at_us  BIGINT  NOT NULL,
    status             TEXT    NOT NULL DEFAULT 'parked',
    note               TEXT,
    headers            TEXT    NOT NULL,
    payload            BYTEA
);
CREATE INDEX dead_letters_by_status ON dead_letters (status, id);
CREATE INDEX dead_letters_by_key ON dead_letters (record_key);
