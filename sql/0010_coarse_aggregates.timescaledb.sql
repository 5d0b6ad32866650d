-- chatpulse:no-transaction
-- Coarser aggregates for the dashboards (issue 7, Performance): a day of a busy channel is
-- ~310,000 rows of chatters_1m and ~76,000 of emotes_10s, too many to read within 100 ms.
--   chatters_1h, chatters_6h, chatters_1d
--                per channel, user and hour (6 hours, day), each on the one before, with the
--                columns of chatters_1m.  chat.unique_chatters() (0011) counts the distinct
--                chatters of any range exactly from the coarsest whole blocks inside it and
--                the minutes at its ends.
--   emotes_1m    per channel, emote and minute, on emotes_10s: the emote panels read it
--                whenever the panel's interval is a whole number of minutes.
-- Hierarchical, real-time continuous aggregates like activity_1m/activity_1h, each with a
-- refresh policy over the same 7-day window.

CREATE MATERIALIZED VIEW IF NOT EXISTS chat.chatters_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', bucket)            AS bucket,
       channel_id,
       user_id,
       max(user_login)                                    AS user_login,
       sum(messages)::bigint                              AS messages,
       sum(emote_uses)::bigint                            AS emote_uses,
       sum(chars)::bigint                                 AS chars,
       sum(subs)::bigint                                  AS subs,
       sum(raids)::bigint                                 AS raids,
       sum(bits)::bigint                                  AS bits
FROM chat.chatters_1m
GROUP BY 1, 2, 3
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS chat.chatters_6h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '6 hours', bucket)           AS bucket,
       channel_id,
       user_id,
       max(user_login)                                    AS user_login,
       sum(messages)::bigint                              AS messages,
       sum(emote_uses)::bigint                            AS emote_uses,
       sum(chars)::bigint                                 AS chars,
       sum(subs)::bigint                                  AS subs,
       sum(raids)::bigint                                 AS raids,
       sum(bits)::bigint                                  AS bits
FROM chat.chatters_1h
GROUP BY 1, 2, 3
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS chat.chatters_1d
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', bucket)             AS bucket,
       channel_id,
       user_id,
       max(user_login)                                    AS user_login,
       sum(messages)::bigint                              AS messages,
       sum(emote_uses)::bigint                            AS emote_uses,
       sum(chars)::bigint                                 AS chars,
       sum(subs)::bigint                                  AS subs,
       sum(raids)::bigint                                 AS raids,
       sum(bits)::bigint                                  AS bits
FROM chat.chatters_6h
GROUP BY 1, 2, 3
WITH NO DATA;

CREATE MATERIALIZED VIEW IF NOT EXISTS chat.emotes_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', bucket)          AS bucket,
       channel_id,
       emote_name,
       provider,
       sum(uses)::bigint                                  AS uses,
       sum(messages)::bigint                              AS messages
FROM chat.emotes_10s
GROUP BY 1, 2, 3, 4
WITH NO DATA;

-- A database upgraded from an earlier version already holds history: fill the new aggregates
-- from their (already materialized) parents.  On a new database this finds nothing to do.
-- Before the policies: a new policy's job starts at once and would race these refreshes.
CALL refresh_continuous_aggregate('chat.chatters_1h', NULL, NULL);
CALL refresh_continuous_aggregate('chat.chatters_6h', NULL, NULL);
CALL refresh_continuous_aggregate('chat.chatters_1d', NULL, NULL);
CALL refresh_continuous_aggregate('chat.emotes_1m', NULL, NULL);

SELECT add_continuous_aggregate_policy('chat.chatters_1h', start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '10 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('chat.chatters_6h', start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('chat.chatters_1d', start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour', if_not_exists => true);
SELECT add_continuous_aggregate_policy('chat.emotes_1m', start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => true);
