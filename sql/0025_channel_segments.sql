-- Panel speed (issue 15, bench/analytics.py).  Plain PostgreSQL and TimescaleDB alike.
--
-- The Audience "Current segments" panel counted every chatter of a channel per segment from
-- chat.chatter_segments (138,000 chatters on a month of a busy channel: 60-120 ms, over the
-- 100 ms target at 24 h under load, and growing with every new chatter).  `chatpulse analyze`
-- now keeps those counts in chat.channel_segments, one row per channel, latest stream and
-- segment (sql/queries/analytics.sql, fill_channel_segments, after refresh_channel_chatters),
-- and the panel sums the rows up to the end of its range: the same answer from a few hundred
-- rows.  Public (README SQL contract).
CREATE TABLE chat.channel_segments (
    channel_id      integer     NOT NULL,
    last_stream_at  timestamptz NOT NULL,
    segment         text        NOT NULL,
    chatters        integer     NOT NULL,
    CONSTRAINT channel_segments_key PRIMARY KEY (channel_id, last_stream_at, segment)
);
COMMENT ON TABLE chat.channel_segments IS 'Chatters per channel, latest stream start and segment (chatpulse analyze; the counts of chat.chatter_segments).';

INSERT INTO chat.channel_segments (channel_id, last_stream_at, segment, chatters)
SELECT channel_id, last_stream_at, segment, count(*)
FROM chat.channel_chatters
GROUP BY channel_id, last_stream_at, segment;
