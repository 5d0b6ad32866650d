-- Panel and incremental speed (issue 15, bench/analytics.py).  Plain PostgreSQL and
-- TimescaleDB alike.
--
-- The Compare channels "Signatures" panel and the Audience "Segment shares per stream" panel
-- counted every chatter row of the streams in range per segment (over 100 ms at 24 h on a busy
-- channel).  `chatpulse analyze` now keeps those counts in chat.stream_segments, one row per
-- stream and segment that has chatters (sql/queries/analytics.sql, fill_stream_segments, after
-- assign_segments), and the panels read them.  Public (README SQL contract).
CREATE TABLE chat.stream_segments (
    stream_id   bigint  NOT NULL REFERENCES chat.streams (id) ON DELETE CASCADE,
    channel_id  integer NOT NULL,
    segment     text    NOT NULL,
    chatters    integer NOT NULL,
    CONSTRAINT stream_segments_key PRIMARY KEY (stream_id, segment)
);
COMMENT ON TABLE chat.stream_segments IS 'Chatters of each stream per segment (chatpulse analyze; the counts of chat.stream_chatters).';

INSERT INTO chat.stream_segments (stream_id, channel_id, segment, chatters)
SELECT stream_id, min(channel_id), segment, count(*)
FROM chat.stream_chatters
GROUP BY stream_id, segment;

-- Incremental speed: assign_segments reads, for each chatter of the streams it judges, their
-- rows of the earlier streams (stream_id and messages); with these two columns in the index it
-- reads them from the index alone instead of visiting each row in the table (fillfactor 50,
-- migration 0021).  Same name and key columns as migration 0016's index.
DROP INDEX chat.stream_chatters_chatter_idx;
CREATE INDEX stream_chatters_chatter_idx ON chat.stream_chatters (channel_id, chatter, started_at)
    INCLUDE (stream_id, messages);
