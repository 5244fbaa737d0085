-- The id of the record just before next_offset, so a consumer can check that
-- the log it resumes in is the log it left (a broker that came back empty
-- has other records, or none, at that offset).
ALTER TABLE consumer_positions ADD COLUMN last_record TEXT;
