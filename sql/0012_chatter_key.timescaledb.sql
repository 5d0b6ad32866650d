-- chatpulse:no-transaction
-- TimescaleDB: chatters counted by a stable key (issue 13 item 2), every subscription kind in
-- `subs` (issue 20 item 3); the plain PostgreSQL variant explains both.  A continuous
-- aggregate's query cannot be altered, so the chatter aggregates and the activity aggregates
-- built on them lose their refresh policies, are dropped (dependents first) and are created
-- again with a `chatter` column (last, as on plain PostgreSQL), then refreshed over the whole
-- history before their policies are added again.  Every step may run again, so a migration
-- interrupted half-way is completed by the next `migrate`.
--
-- Emote uses: the aggregates sum chat.messages.emote_count.  TimescaleDB logs UPDATEs of the
-- hypertable for its continuous aggregates itself; the policies refresh the last 7 days, and a
-- backfill of older rows calls chatpulse.aggregates.refresh_range() for the range it changed.

CREATE OR REPLACE FUNCTION chat.chatter_key(user_id text, user_login text, user_name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(nullif(user_id, ''),
                'login:' || nullif(lower(user_login), ''),
                'name:' || nullif(lower(user_name), ''));

COMMENT ON FUNCTION chat.chatter_key(text, text, text) IS
    'Stable chatter key: user id, else login:<login>, else name:<display name> (lower case); NULL = no user.';

DO $$
DECLARE
    view text;
BEGIN
    FOREACH view IN ARRAY ARRAY['chat.chatters_1d', 'chat.chatters_6h', 'chat.chatters_1h',
                                'chat.activity_1h', 'chat.activity_1m', 'chat.chatters_1m'] LOOP
        IF to_regclass(view) IS NOT NULL THEN
            PERFORM remove_continuous_aggregate_policy(view::regclass, if_exists => true);
        END IF;
    END LOOP;
END $$;

DROP MATERIALIZED VIEW IF EXISTS chat.chatters_1d;
DROP MATERIALIZED VIEW IF EXISTS chat.chatters_6h;
DROP MATERIALIZED VIEW IF EXISTS chat.chatters_1h;
DROP MATERIALIZED VIEW IF EXISTS chat.activity_1h;
DROP MATERIALIZED VIEW IF EXISTS chat.activity_1m;
DROP MATERIALIZED VIEW IF EXISTS chat.chatters_1m;

CREATE MATERIALIZED VIEW chat.chatters_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', sent_at) AS bucket,
       channel_id,
       max(user_id)                                       AS user_id,
       max(user_login)                                    AS user_login,
       count(*)::bigint                                   AS messages,
       sum(emote_count)::bigint                           AS emote_uses,
       sum(length(text))::bigint                          AS chars,
       count(*) FILTER (WHERE kind IN ('sub', 'resub', 'extendsub', 'subgift', 'anonsubgift',
           'submysterygift', 'anonsubmysterygift', 'giftpaidupgrade', 'anongiftpaidupgrade',
           'primepaidupgrade', 'membership', 'membership_gift',
           'membership_gift_received'))::bigint          AS subs,
       count(*) FILTER (WHERE kind = 'raid')::bigint      AS raids,
       sum(bits)::bigint                                  AS bits,
       chat.chatter_key(user_id, user_login, user_name)   AS chatter
FROM chat.messages
GROUP BY time_bucket(INTERVAL '1 minute', sent_at), channel_id,
         chat.chatter_key(user_id, user_login, user_name)
WITH NO DATA;

CREATE MATERIALIZED VIEW chat.activity_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 minute', bucket)          AS bucket,
       channel_id,
       sum(messages)::bigint                              AS messages,
       count(chatter)::bigint                             AS chatters,
       sum(emote_uses)::bigint                            AS emote_uses,
       (sum(chars)::double precision / nullif(sum(messages), 0)) AS avg_length,
       sum(subs)::bigint                                  AS subs,
       sum(bits)::bigint                                  AS bits,
       sum(raids)::bigint                                 AS raids,
       sum(chars)::bigint                                 AS chars
FROM chat.chatters_1m
GROUP BY 1, 2
WITH NO DATA;

CREATE MATERIALIZED VIEW chat.activity_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', bucket)            AS bucket,
       channel_id,
       sum(messages)::bigint                              AS messages,
       count(DISTINCT chatter)::bigint                    AS chatters,
       sum(emote_uses)::bigint                            AS emote_uses,
       (sum(chars)::double precision / nullif(sum(messages), 0)) AS avg_length,
       sum(subs)::bigint                                  AS subs,
       sum(bits)::bigint                                  AS bits,
       sum(raids)::bigint                                 AS raids,
       sum(chars)::bigint                                 AS chars
FROM chat.chatters_1m
GROUP BY 1, 2
WITH NO DATA;

CREATE MATERIALIZED VIEW chat.chatters_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', bucket)            AS bucket,
       channel_id,
       max(user_id)                                       AS user_id,
       max(user_login)                                    AS user_login,
       sum(messages)::bigint                              AS messages,
       sum(emote_uses)::bigint                            AS emote_uses,
       sum(chars)::bigint                                 AS chars,
       sum(subs)::bigint                                  AS subs,
       sum(raids)::bigint                                 AS raids,
       sum(bits)::bigint                                  AS bits,
       chatter
FROM chat.chatters_1m
GROUP BY time_bucket(INTERVAL '1 hour', bucket), channel_id, chatter
WITH NO DATA;

CREATE MATERIALIZED VIEW chat.chatters_6h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '6 hours', bucket)           AS bucket,
       channel_id,
       max(user_id)                                       AS user_id,
       max(user_login)                                    AS user_login,
       sum(messages)::bigint                              AS messages,
       sum(emote_uses)::bigint                            AS emote_uses,
       sum(chars)::bigint                                 AS chars,
       sum(subs)::bigint                                  AS subs,
       sum(raids)::bigint                                 AS raids,
       sum(bits)::bigint                                  AS bits,
       chatter
FROM chat.chatters_1h
GROUP BY time_bucket(INTERVAL '6 hours', bucket), channel_id, chatter
WITH NO DATA;

CREATE MATERIALIZED VIEW chat.chatters_1d
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', bucket)             AS bucket,
       channel_id,
       max(user_id)                                       AS user_id,
       max(user_login)                                    AS user_login,
       sum(messages)::bigint                              AS messages,
       sum(emote_uses)::bigint                            AS emote_uses,
       sum(chars)::bigint                                 AS chars,
       sum(subs)::bigint                                  AS subs,
       sum(raids)::bigint                                 AS raids,
       sum(bits)::bigint                                  AS bits,
       chatter
FROM chat.chatters_6h
GROUP BY time_bucket(INTERVAL '1 day', bucket), channel_id, chatter
WITH NO DATA;

-- The whole history, parents before children; before the policies, whose first runs would
-- race these refreshes (as in 0010).  On a new database there is nothing to do.
CALL refresh_continuous_aggregate('chat.chatters_1m', NULL, NULL);
CALL refresh_continuous_aggregate('chat.activity_1m', NULL, NULL);
CALL refresh_continuous_aggregate('chat.activity_1h', NULL, NULL);
CALL refresh_continuous_aggregate('chat.chatters_1h', NULL, NULL);
CALL refresh_continuous_aggregate('chat.chatters_6h', NULL, NULL);
CALL refresh_continuous_aggregate('chat.chatters_1d', NULL, NULL);

SELECT add_continuous_aggregate_policy('chat.chatters_1m', start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => true);
SELECT add_continuous_aggregate_policy('chat.activity_1m', start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute', if_not_exists => true);
SELECT add_continuous_aggregate_policy('chat.activity_1h', start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '10 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('chat.chatters_1h', start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '10 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('chat.chatters_6h', start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('chat.chatters_1d', start_offset => INTERVAL '7 days',
    end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour', if_not_exists => true);

-- chat.unique_chatters() as in 0011, counting distinct chatter keys (rows without a user are
-- nobody's chatter).
CREATE OR REPLACE FUNCTION chat.unique_chatters(channels text[], start_at timestamptz,
                                                end_at timestamptz)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET work_mem = '64MB'
AS $$
DECLARE
    origin CONSTANT timestamptz := '2000-01-03 00:00:00+00';  -- time_bucket's default origin
    ids integer[];
    lo timestamptz := date_bin(INTERVAL '1 minute', start_at, origin);
    hi timestamptz := date_bin(INTERVAL '1 minute', end_at, origin) + INTERVAL '1 minute';
    segments tstzrange[];
    rest tstzrange[];
    seg tstzrange;
    level record;
    a timestamptz;
    b timestamptz;
    parts text[] := '{}';
    piece CONSTANT text :=
        'SELECT channel_id, chatter FROM chat.%I WHERE channel_id = ANY($1) '
        'AND bucket >= %L AND bucket < %L AND chatter IS NOT NULL';
    n bigint;
BEGIN
    IF lo < start_at THEN
        lo := lo + INTERVAL '1 minute';  -- the first minute that begins inside the range
    END IF;
    SELECT array_agg(c.id) INTO ids FROM chat.channels c WHERE c.name = ANY(unique_chatters.channels);
    IF ids IS NULL OR lo >= hi THEN
        RETURN 0;
    END IF;
    segments := ARRAY[tstzrange(lo, hi)];
    FOR level IN
        SELECT * FROM (VALUES ('chatters_1d', INTERVAL '1 day'), ('chatters_6h', INTERVAL '6 hours'),
                              ('chatters_1h', INTERVAL '1 hour')) AS l (relation, width)
    LOOP
        rest := '{}';
        FOREACH seg IN ARRAY segments LOOP
            a := date_bin(level.width, lower(seg), origin);
            IF a < lower(seg) THEN
                a := a + level.width;
            END IF;
            b := date_bin(level.width, upper(seg), origin);
            IF a < b THEN
                parts := parts || format(piece, level.relation, a, b);
                IF lower(seg) < a THEN
                    rest := rest || tstzrange(lower(seg), a);
                END IF;
                IF b < upper(seg) THEN
                    rest := rest || tstzrange(b, upper(seg));
                END IF;
            ELSE
                rest := rest || seg;
            END IF;
        END LOOP;
        segments := rest;
    END LOOP;
    FOREACH seg IN ARRAY segments LOOP
        parts := parts || format(piece, 'chatters_1m', lower(seg), upper(seg));
    END LOOP;
    EXECUTE 'SELECT count(*) FROM (SELECT DISTINCT channel_id, chatter FROM ('
            || array_to_string(parts, ' UNION ALL ') || ') p) d'
        INTO n USING ids;
    RETURN n;
END $$;

COMMENT ON FUNCTION chat.unique_chatters(text[], timestamptz, timestamptz) IS
    'Distinct chatters (chat.chatter_key) who wrote in the named channels in the minutes beginning within [start_at, end_at]; exact.';
