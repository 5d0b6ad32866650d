-- Plain PostgreSQL only: chatters_1h, chatters_6h, chatters_1d and emotes_1m, the coarser
-- aggregates the dashboards read (see the TimescaleDB variant), as tables kept current by
-- chat.refresh_aggregates(), which this migration replaces with a version that fills them too,
-- each from the one below it, like TimescaleDB's hierarchical aggregates.  Invalidated ranges
-- are whole hours; the 6-hour and day blocks they touch are recomputed whole.

CREATE TABLE chat.chatters_1h (LIKE chat.chatters_1m);
CREATE UNIQUE INDEX chatters_1h_key ON chat.chatters_1h (channel_id, bucket, user_id) NULLS NOT DISTINCT;
CREATE INDEX chatters_1h_bucket_idx ON chat.chatters_1h (bucket DESC);
CREATE TABLE chat.chatters_6h (LIKE chat.chatters_1m);
CREATE UNIQUE INDEX chatters_6h_key ON chat.chatters_6h (channel_id, bucket, user_id) NULLS NOT DISTINCT;
CREATE INDEX chatters_6h_bucket_idx ON chat.chatters_6h (bucket DESC);
CREATE TABLE chat.chatters_1d (LIKE chat.chatters_1m);
CREATE UNIQUE INDEX chatters_1d_key ON chat.chatters_1d (channel_id, bucket, user_id) NULLS NOT DISTINCT;
CREATE INDEX chatters_1d_bucket_idx ON chat.chatters_1d (bucket DESC);

CREATE TABLE chat.emotes_1m (LIKE chat.emotes_10s INCLUDING ALL);

CREATE OR REPLACE FUNCTION chat.refresh_aggregates() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n integer := 0;
    lo6 timestamptz;
    hi6 timestamptz;
    lo1d timestamptz;
    hi1d timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('chatpulse.refresh_aggregates', 0));
    FOR r IN
        WITH taken AS (
            DELETE FROM chat.aggregate_invalidations RETURNING relation, lo, hi
        ), merged AS (
            SELECT relation,
                   range_agg(tstzrange(chat.bucket_start(INTERVAL '1 hour', lo),
                                       chat.bucket_start(INTERVAL '1 hour', hi) + INTERVAL '1 hour')) AS ranges
            FROM taken GROUP BY relation
        )
        SELECT relation, lower(piece) AS lo, upper(piece) AS hi
        FROM merged, unnest(ranges) AS piece
        ORDER BY relation, lo
    LOOP
        n := n + 1;
        IF r.relation = 'messages' THEN
            DELETE FROM chat.chatters_1m WHERE bucket >= r.lo AND bucket < r.hi;
            INSERT INTO chat.chatters_1m
            SELECT chat.bucket_start(INTERVAL '1 minute', sent_at), channel_id, user_id,
                   max(user_login), count(*), sum(emote_count), sum(length(text)),
                   count(*) FILTER (WHERE kind IN ('sub', 'resub', 'subgift')),
                   count(*) FILTER (WHERE kind = 'raid'), sum(bits)
            FROM chat.messages WHERE sent_at >= r.lo AND sent_at < r.hi
            GROUP BY 1, 2, 3;

            DELETE FROM chat.activity_1m WHERE bucket >= r.lo AND bucket < r.hi;
            INSERT INTO chat.activity_1m
            SELECT bucket, channel_id, sum(messages), count(*), sum(emote_uses),
                   sum(chars)::double precision / nullif(sum(messages), 0),
                   sum(subs), sum(bits), sum(raids), sum(chars)
            FROM chat.chatters_1m WHERE bucket >= r.lo AND bucket < r.hi
            GROUP BY 1, 2;

            DELETE FROM chat.activity_1h WHERE bucket >= r.lo AND bucket < r.hi;
            INSERT INTO chat.activity_1h
            SELECT chat.bucket_start(INTERVAL '1 hour', bucket), channel_id, sum(messages),
                   count(DISTINCT user_id), sum(emote_uses),
                   sum(chars)::double precision / nullif(sum(messages), 0),
                   sum(subs), sum(bits), sum(raids), sum(chars)
            FROM chat.chatters_1m WHERE bucket >= r.lo AND bucket < r.hi
            GROUP BY 1, 2;

            DELETE FROM chat.chatters_1h WHERE bucket >= r.lo AND bucket < r.hi;
            INSERT INTO chat.chatters_1h
            SELECT chat.bucket_start(INTERVAL '1 hour', bucket), channel_id, user_id,
                   max(user_login), sum(messages), sum(emote_uses), sum(chars), sum(subs),
                   sum(raids), sum(bits)
            FROM chat.chatters_1m WHERE bucket >= r.lo AND bucket < r.hi
            GROUP BY 1, 2, 3;

            lo6 := chat.bucket_start(INTERVAL '6 hours', r.lo);
            hi6 := chat.bucket_start(INTERVAL '6 hours', r.hi - INTERVAL '1 microsecond') + INTERVAL '6 hours';
            DELETE FROM chat.chatters_6h WHERE bucket >= lo6 AND bucket < hi6;
            INSERT INTO chat.chatters_6h
            SELECT chat.bucket_start(INTERVAL '6 hours', bucket), channel_id, user_id,
                   max(user_login), sum(messages), sum(emote_uses), sum(chars), sum(subs),
                   sum(raids), sum(bits)
            FROM chat.chatters_1h WHERE bucket >= lo6 AND bucket < hi6
            GROUP BY 1, 2, 3;

            lo1d := chat.bucket_start(INTERVAL '1 day', r.lo);
            hi1d := chat.bucket_start(INTERVAL '1 day', r.hi - INTERVAL '1 microsecond') + INTERVAL '1 day';
            DELETE FROM chat.chatters_1d WHERE bucket >= lo1d AND bucket < hi1d;
            INSERT INTO chat.chatters_1d
            SELECT chat.bucket_start(INTERVAL '1 day', bucket), channel_id, user_id,
                   max(user_login), sum(messages), sum(emote_uses), sum(chars), sum(subs),
                   sum(raids), sum(bits)
            FROM chat.chatters_6h WHERE bucket >= lo1d AND bucket < hi1d
            GROUP BY 1, 2, 3;
        ELSIF r.relation = 'message_scores' THEN
            DELETE FROM chat.sentiment_1m WHERE bucket >= r.lo AND bucket < r.hi;
            INSERT INTO chat.sentiment_1m
            SELECT chat.bucket_start(INTERVAL '1 minute', sent_at), channel_id, model, count(*),
                   avg(sentiment),
                   count(*) FILTER (WHERE label = 'positive'),
                   count(*) FILTER (WHERE label = 'neutral'),
                   count(*) FILTER (WHERE label = 'negative'),
                   avg(anger), avg(anticipation), avg(disgust), avg(fear), avg(joy), avg(love),
                   avg(optimism), avg(pessimism), avg(sadness), avg(surprise), avg(trust),
                   count(*) FILTER (WHERE toxicity >= 0.5), avg(toxicity)
            FROM chat.message_scores WHERE sent_at >= r.lo AND sent_at < r.hi
            GROUP BY 1, 2, 3;
        ELSIF r.relation = 'emote_uses' THEN
            DELETE FROM chat.emotes_10s WHERE bucket >= r.lo AND bucket < r.hi;
            INSERT INTO chat.emotes_10s
            SELECT chat.bucket_start(INTERVAL '10 seconds', sent_at), channel_id, emote_name,
                   provider, sum(count), count(*)
            FROM chat.emote_uses WHERE sent_at >= r.lo AND sent_at < r.hi
            GROUP BY 1, 2, 3, 4;

            DELETE FROM chat.emotes_1m WHERE bucket >= r.lo AND bucket < r.hi;
            INSERT INTO chat.emotes_1m
            SELECT chat.bucket_start(INTERVAL '1 minute', bucket), channel_id, emote_name,
                   provider, sum(uses), sum(messages)
            FROM chat.emotes_10s WHERE bucket >= r.lo AND bucket < r.hi
            GROUP BY 1, 2, 3, 4;
        END IF;
    END LOOP;
    RETURN n;
END $$;

-- Fill them from history already aggregated (an upgraded database); nothing on a new one.
INSERT INTO chat.chatters_1h
SELECT chat.bucket_start(INTERVAL '1 hour', bucket), channel_id, user_id, max(user_login),
       sum(messages), sum(emote_uses), sum(chars), sum(subs), sum(raids), sum(bits)
FROM chat.chatters_1m GROUP BY 1, 2, 3;
INSERT INTO chat.chatters_6h
SELECT chat.bucket_start(INTERVAL '6 hours', bucket), channel_id, user_id, max(user_login),
       sum(messages), sum(emote_uses), sum(chars), sum(subs), sum(raids), sum(bits)
FROM chat.chatters_1h GROUP BY 1, 2, 3;
INSERT INTO chat.chatters_1d
SELECT chat.bucket_start(INTERVAL '1 day', bucket), channel_id, user_id, max(user_login),
       sum(messages), sum(emote_uses), sum(chars), sum(subs), sum(raids), sum(bits)
FROM chat.chatters_6h GROUP BY 1, 2, 3;
INSERT INTO chat.emotes_1m
SELECT chat.bucket_start(INTERVAL '1 minute', bucket), channel_id, emote_name, provider,
       sum(uses), sum(messages)
FROM chat.emotes_10s GROUP BY 1, 2, 3, 4;
