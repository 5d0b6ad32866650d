-- Analyze speed (issue 15, bench/analytics.py): assign_segments rewrites the segment and
-- first_time of every chatter row of the streams it judges (a month of rows after a first
-- pass).  Neither column is indexed, so with free room on each page PostgreSQL updates the row
-- in place of a new index entry (a HOT update): about 6x faster on the bench's 300,000 rows.
-- Rows written from now on leave half of each page free.  Plain PostgreSQL and TimescaleDB alike.
ALTER TABLE chat.stream_chatters SET (fillfactor = 50);
