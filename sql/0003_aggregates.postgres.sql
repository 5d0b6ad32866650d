-- Plain PostgreSQL only: the same relations as TimescaleDB's continuous aggregates, as tables
-- kept current by chat.refresh_aggregates().  Statement-level triggers log which time ranges
-- changed (an invalidation log, like TimescaleDB's), so late rows from gap fill, spool replay
-- or a file replay are aggregated too, and `chatpulse forget` removes its rows from them.

CREATE TABLE chat.chatters_1m (
    bucket      timestamptz NOT NULL,
    channel_id  integer     NOT NULL,
    user_id     text,
    user_login  text,
    messages    bigint      NOT NULL,
    emote_uses  bigint,
    chars       bigint,
    subs        bigint,
    raids       bigint,
    bits        bigint
);
CREATE UNIQUE INDEX chatters_1m_key ON chat.chatters_1m (channel_id, bucket, user_id) NULLS NOT DISTINCT;
CREATE INDEX chatters_1m_bucket_idx ON chat.chatters_1m (bucket DESC);

CREATE TABLE chat.activity_1m (
    bucket      timestamptz NOT NULL,
    channel_id  integer     NOT NULL,
    messages    bigint,
    chatters    bigint,
    emote_uses  bigint,
    avg_length  double precision,
    subs        bigint,
    bits        bigint,
    raids       bigint,
    chars       bigint,
    PRIMARY KEY (channel_id, bucket)
);
CREATE INDEX activity_1m_bucket_idx ON chat.activity_1m (bucket DESC);

CREATE TABLE chat.activity_1h (LIKE chat.activity_1m INCLUDING ALL);

CREATE TABLE chat.sentiment_1m (
    bucket         timestamptz NOT NULL,
    channel_id     integer     NOT NULL,
    model          text        NOT NULL,
    scored         bigint,
    avg_sentiment  double precision,
    positive       bigint,
    neutral        bigint,
    negative       bigint,
    anger          double precision,
    anticipation   double precision,
    disgust        double precision,
    fear           double precision,
    joy            double precision,
    love           double precision,
    optimism       double precision,
    pessimism      double precision,
    sadness        double precision,
    surprise       double precision,
    trust          double precision,
    toxic          bigint,
    avg_toxicity   double precision,
    PRIMARY KEY (channel_id, model, bucket)
);
CREATE INDEX sentiment_1m_bucket_idx ON chat.sentiment_1m (bucket DESC);

CREATE TABLE chat.emotes_10s (
    bucket      timestamptz NOT NULL,
    channel_id  integer     NOT NULL,
    emote_name  text        NOT NULL,
    provider    text        NOT NULL,
    uses        bigint,
    messages    bigint,
    PRIMARY KEY (channel_id, emote_name, provider, bucket)
);
CREATE INDEX emotes_10s_bucket_idx ON chat.emotes_10s (bucket DESC);

CREATE TABLE chat.aggregate_invalidations (
    id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    relation  text        NOT NULL,
    lo        timestamptz NOT NULL,
    hi        timestamptz NOT NULL,
    logged_at timestamptz NOT NULL DEFAULT now()
);

-- time_bucket's default origin (2000-01-03, a Monday), so buckets match TimescaleDB's.
CREATE FUNCTION chat.bucket_start(width interval, ts timestamptz) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN date_bin(width, ts, timestamptz '2000-01-03 00:00:00+00');

CREATE FUNCTION chat.log_invalidation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        EXECUTE format('INSERT INTO chat.aggregate_invalidations (relation, lo, hi)
                        SELECT %L, min(%I), max(%I) FROM new_rows HAVING count(*) > 0',
                       TG_TABLE_NAME, TG_ARGV[0], TG_ARGV[0]);
    END IF;
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        EXECUTE format('INSERT INTO chat.aggregate_invalidations (relation, lo, hi)
                        SELECT %L, min(%I), max(%I) FROM old_rows HAVING count(*) > 0',
                       TG_TABLE_NAME, TG_ARGV[0], TG_ARGV[0]);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER messages_invalidate_ins AFTER INSERT ON chat.messages
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chat.log_invalidation('sent_at');
CREATE TRIGGER messages_invalidate_del AFTER DELETE ON chat.messages
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION chat.log_invalidation('sent_at');
CREATE TRIGGER message_scores_invalidate_ins AFTER INSERT ON chat.message_scores
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chat.log_invalidation('sent_at');
CREATE TRIGGER message_scores_invalidate_upd AFTER UPDATE ON chat.message_scores
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chat.log_invalidation('sent_at');
CREATE TRIGGER message_scores_invalidate_del AFTER DELETE ON chat.message_scores
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION chat.log_invalidation('sent_at');
CREATE TRIGGER emote_uses_invalidate_ins AFTER INSERT ON chat.emote_uses
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chat.log_invalidation('sent_at');
CREATE TRIGGER emote_uses_invalidate_del AFTER DELETE ON chat.emote_uses
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION chat.log_invalidation('sent_at');

-- Recompute every aggregate bucket touched since the last call; returns the number of
-- (relation, range) pieces refreshed.  Serialised by an advisory lock, so any number of
-- scorer workers may call it.  Ranges are widened to whole hours (the coarsest bucket) and
-- merged, so a burst of small batches costs one recomputation.
CREATE FUNCTION chat.refresh_aggregates() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    r record;
    n integer := 0;
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
        END IF;
    END LOOP;
    RETURN n;
END $$;
