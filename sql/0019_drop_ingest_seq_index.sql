-- Insert cost (issue 18): every index of chat.messages is paid on each row a writer inserts, so
-- each must serve a query.  messages_ingest_seq_idx (ingest_seq alone, from 0001) serves none:
-- since 0005 the scorer reads and claims in (ingest_xid, ingest_seq) order through
-- messages_ingest_xid_idx, and the detector follows transaction snapshots (0009).  No dashboard,
-- service or view filters or orders on ingest_seq alone.  bench/ingest.py --index-costs measures
-- what each index costs at insert; README "Bus sizing" has the figures.
-- Plain PostgreSQL and TimescaleDB alike (on a hypertable DROP INDEX drops every chunk's copy).
-- The column and its sequence stay: they are part of the public table.
DROP INDEX IF EXISTS chat.messages_ingest_seq_idx;
