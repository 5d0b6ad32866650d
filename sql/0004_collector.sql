-- Collector bookkeeping.
-- gap_key: the collector's id for a gap, so that opening, closing and filling it are
-- idempotent even when they are replayed from the spool after a database outage.
ALTER TABLE chat.gaps ADD COLUMN gap_key text;
ALTER TABLE chat.gaps ADD CONSTRAINT gaps_gap_key_key UNIQUE (gap_key);
COMMENT ON COLUMN chat.gaps.gap_key IS 'Collector-assigned id of the gap (idempotent updates)';
