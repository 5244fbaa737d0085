-- Read models: JSON documents per view and key, folded from the service's
-- events in the transaction that records them, and rebuilt by replay.
-- tag_a..tag_c are the view's filter columns (for orders: status, country, channel).
CREATE TABLE read_models (
    view          TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    doc           TEXT    NOT NULL,
    tag_a         TEXT,
    tag_b         TEXT,
    tag_c         TEXT,
    updated_at_us INTEGER NOT NULL,
    PRIMARY KEY (view, key)
) WITHOUT ROWID;
CREATE INDEX read_models_by_tag_a ON read_models (view, tag_a);
CREATE INDEX read_models_by_updated ON read_models (view, updated_at_us);
