-- The first tag's index also orders by the time a document was last written,
-- so "documents tagged X written since T" (the order service's door reads the
-- orders ended in the last 5 s, five times a second) and "tagged X, not
-- written since T" (stuck orders) are range reads of this index alone. On
-- (view, tag_a) such a count read every document ever tagged X and looked up
-- its row for the time: at 12,000 orders 15 ms per reading with a reader's
-- page cache, growing with every order (docs/benchmarks.md, ninth
-- measurement). It serves every lookup the old index served.
CREATE INDEX read_models_by_tag_a_updated ON read_models (view, tag_a, updated_at_us);
DROP INDEX read_models_by_tag_a;
