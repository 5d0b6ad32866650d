-- Panel speed (issue 15, bench/analytics.py): chat.chatter_segments (every chatter's current
-- segment) read every chatter row of a channel's history through DISTINCT ON, over 500 ms on a
-- month of a busy channel.  `chatpulse analyze` now keeps the answer in chat.channel_chatters,
-- one row per channel and chatter (sql/queries/analytics.sql, refresh_channel_chatters), and
-- the view reads it, with the same columns.  Internal: readers use the view.  Plain PostgreSQL
-- and TimescaleDB alike.
CREATE TABLE chat.channel_chatters (
    channel_id      integer     NOT NULL,
    chatter         text        NOT NULL,
    login           text,
    segment         text        NOT NULL,
    last_stream_at  timestamptz NOT NULL,
    CONSTRAINT channel_chatters_key PRIMARY KEY (channel_id, chatter)
);
COMMENT ON TABLE chat.channel_chatters IS 'Each chatter''s segment in their latest stream (chatpulse analyze; read chat.chatter_segments).';

INSERT INTO chat.channel_chatters (channel_id, chatter, login, segment, last_stream_at)
SELECT DISTINCT ON (channel_id, chatter) channel_id, chatter, login, segment, started_at
FROM chat.stream_chatters
ORDER BY channel_id, chatter, started_at DESC;

CREATE OR REPLACE VIEW chat.chatter_segments AS
SELECT channel_id, chatter, login, segment, last_stream_at
FROM chat.channel_chatters;
