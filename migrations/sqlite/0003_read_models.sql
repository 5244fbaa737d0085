-- Read models: JSON documents per view and key, folded from the service's
-- events in the transaction that records them, and rebuilt by replay.
-- tag_a..tag_c are the view's filter columns (for orders: status, country, channel);
-- due_at_us is when a document needs attention (for orders: the saga deadline).
-- Documents can be large (an order's timeline), so the table keeps its rowid:
-- a WITHOUT ROWID table stores whole rows in its index pages.
CREATE TABLE read_models (
    view          TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    doc           TEXT    NOT NULL,
    tag_a         TEXT,
    tag_b         TEXT,
    tag_c         TEXT,
    due_at_us     INTEGER,
    updated_at_us INTEGER NOT NULL,
    PRIMARY KEY (view, key)
);
CREATE INDEX read_models_by_tag_a ON read_models (view, tag_a);
CREATE INDEX read_models_by_tag_b ON read_models (view, tag_b);
CREATE INDEX read_models_by_tag_c ON read_models (view, tag_c);
CREATE INDEX read_models_by_due ON read_models (view, due_at_us) WHERE due_at_us IS NOT NULL;
CREATE INDEX read_models_by_updated ON read_models (view, updated_at_us);
