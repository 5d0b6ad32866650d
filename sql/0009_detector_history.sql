-- Detector (issue 6): find every newly inserted message, whatever its sent_at, so that older
-- chat replayed into a channel the detector already passed is detected too.
--
-- seen_snapshot: the snapshot in which the detector last looked for new rows of the channel.
-- A row is new when its inserting transaction (messages.ingest_xid) is not visible in that
-- snapshot: exact, unlike an ingest_seq cursor, which can pass a row whose transaction commits
-- after a later one (sql/0005_scorer.sql explains the same race for the scorer).
-- last_message_at: the newest sent_at seen, so an idle channel is skipped without a query.
-- gaps_seen_at is no longer read: gap-fill rows are new rows like any other.
ALTER TABLE chat.detector_state ADD COLUMN last_message_at timestamptz;
ALTER TABLE chat.detector_state ADD COLUMN seen_snapshot pg_snapshot;
COMMENT ON COLUMN chat.detector_state.seen_snapshot IS 'Snapshot of the last search for new messages; rows not visible in it are new';
COMMENT ON COLUMN chat.detector_state.last_message_at IS 'Newest sent_at the detector has seen in the channel';
