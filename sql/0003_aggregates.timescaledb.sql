-- chatpulse:no-transaction
-- TimescaleDB only: continuous aggregates, created WITH NO DATA outside a transaction block,
-- real-time (materialized_only = false) so dashboards see the newest minute too, each with a
-- refresh policy.  Distinct chatters go through a per-user aggregate (chatters_1m), so that
-- minutes roll up into exact hourly chatter counts.

CREATE MATERIALIZED VIEW IF NOT EXISTS chat.chatters_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', sent_at) AS bucket,
       channel_id,
       user_id,
       max(user_login)                                   AS user_login,
       count(*)::bigint                                   AS messages,
       sum(emote_count)::bigint                           AS emote_uses,
       sum(length(text))::bigint                          AS chars,
       count(*) FILTER (WHERE kind IN ('sub', 'resub', 'subgift'))::bigint AS subs,
       count(*) FILTER (WHERE kind = 'raid')::bigint      AS raids,
       sum(bits)::bigint                                  AS bits
FROM chat.messages
GROUP BY 1, 2, 3
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS chat.activity_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', bucket)          AS bucket,
       channel_id,
       sum(messages)::bigint                              AS messages,
       count(*)::bigint                                   AS chatters,
       sum(emote_uses)::bigint                            AS emote_uses,
       (sum(chars)::double precision / nullif(sum(messages), 0)) AS avg_length,
       sum(subs)::bigint                                  AS subs,
       sum(bits)::bigint                                  AS bits,
       sum(raids)::bigint                                 AS raids,
       sum(chars)::bigint                                 AS chars
FROM chat.chatters_1m
GROUP BY 1, 2
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS chat.activity_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', bucket)            AS bucket,
       channel_id,
       sum(messages)::bigint                              AS messages,
       count(DISTINCT user_id)::bigint                    AS chatters,
       sum(emote_uses)::bigint                            AS emote_uses,
       (sum(chars)::double precision / nullif(sum(messages), 0)) AS avg_length,
       sum(subs)::bigint                                  AS subs,
       sum(bits)::bigint                                  AS bits,
       sum(raids)::bigint                                 AS raids,
       sum(chars)::bigint                                 AS chars
FROM chat.chatters_1m
GROUP BY 1, 2
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS chat.sentiment_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', sent_at)         AS bucket,
       channel_id,
       model,
       count(*)::bigint                                   AS scored,
       avg(sentiment)::double precision                   AS avg_sentiment,
       count(*) FILTER (WHERE label = 'positive')::bigint AS positive,
       count(*) FILTER (WHERE label = 'neutral')::bigint  AS neutral,
       count(*) FILTER (WHERE label = 'negative')::bigint AS negative,
       avg(anger)::double precision        AS anger,
       avg(anticipation)::double precision AS anticipation,
       avg(disgust)::double precision      AS disgust,
       avg(fear)::double precision         AS fear,
       avg(joy)::double precision          AS joy,
       avg(love)::double precision         AS love,
       avg(optimism)::double precision     AS optimism,
       avg(pessimism)::double precision    AS pessimism,
       avg(sadness)::double precision      AS sadness,
       avg(surprise)::double precision     AS surprise,
       avg(trust)::double precision        AS trust,
       count(*) FILTER (WHERE toxicity >= 0.5)::bigint    AS toxic,
       avg(toxicity)::double precision                    AS avg_toxicity
FROM chat.message_scores
GROUP BY 1, 2, 3
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS chat.emotes_10s
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '10 seconds', sent_at)       AS bucket,
       channel_id,
       emote_name,
       provider,
       sum(count)::bigint                                 AS uses,
       count(*)::bigint                                   AS messages
FROM chat.emote_uses
GROUP BY 1, 2, 3, 4
WITH NO DATA;

-- Refresh policies: a 7-day window takes in late rows from gap fill and spool replay; older
-- history (a replay of last month) is refreshed by the command that loaded it.
SELECT add_continuous_aggregate_policy('chat.chatters_1m', start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => true);
SELECT add_continuous_aggregate_policy('chat.activity_1m', start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => true);
SELECT add_continuous_aggregate_policy('chat.activity_1h', start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '10 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('chat.sentiment_1m', start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => true);
SELECT add_continuous_aggregate_policy('chat.emotes_10s', start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '10 seconds', schedule_interval => INTERVAL '30 seconds', if_not_exists => true);
