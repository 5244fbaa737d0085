-- Snapshots hold whole aggregate states (kilobytes). In a WITHOUT ROWID
-- table every row lives in the primary-key b-tree, so large rows spill to
-- overflow pages that every key lookup has to walk; profiling udders up
-- showed these lookups near the top. Rebuild it as an ordinary table.
CREATE TABLE snapshots_rowid (
    stream         TEXT    PRIMARY KEY,
    version        INTEGER NOT NULL,
    state_schema   INTEGER NOT NULL,
    state          TEXT    NOT NULL,
    taken_at_us    INTEGER NOT NULL
);
INSERT INTO snapshots_rowid (stream, version, state_schema, state, taken_at_us)
    SELECT stream, version, state_schema, state, taken_at_us FROM snapshots;
DROP TABLE snapshots;
ALTER TABLE snapshots_rowid RENAME TO snapshots;
