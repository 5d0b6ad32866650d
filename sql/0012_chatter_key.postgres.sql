-- Plain PostgreSQL: chatters counted by a stable key (issue 13 item 2), every subscription kind
-- in `subs` (issue 20 item 3), and emote uses that follow a backfill (issue 20 item 4).
--
-- chat.chatter_key(user_id, user_login, user_name): the user id when the source gave one, else
-- 'login:' and the login in lower case, else 'name:' and the display name in lower case (a
-- TwitchDownloader TXT line with a localized display name carries no login); NULL for a row
-- with no user at all (such rows are messages but nobody's chatter).  Keys are per channel, and
-- a channel belongs to one platform, so the key is "platform and login" within a channel.
--
-- chatters_1m/1h/6h/1d get a column `chatter` (the key) and are grouped by it; `user_id` and
-- `user_login` stay (the user id when known, the login).  activity_1m.chatters counts the keys
-- of a minute, activity_1h.chatters the distinct keys of an hour, chat.unique_chatters() the
-- distinct keys of a range.  Every aggregate is recomputed from chat.messages here.
--
-- Emote uses: the aggregates sum chat.messages.emote_count, which is the sum of the message's
-- chat.emote_uses counts.  A backfill of emote_uses (emotes rematch) updates emote_count in the
-- same transaction; the UPDATE trigger below logs the changed range, so the next
-- chat.refresh_aggregates() (chatpulse.aggregates.refresh_pending/refresh_range) recomputes it.

CREATE FUNCTION chat.chatter_key(user_id text, user_login text, user_name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN coalesce(nullif(user_id, ''),
                'login:' || nullif(lower(user_login), ''),
                'name:' || nullif(lower(user_name), ''));
COMMENT ON FUNCTION chat.chatter_key(text, text, text) IS
    'Stable chatter key: user id, else login:<login>, else name:<display name> (lower case); NULL = no user.';

CREATE TRIGGER messages_invalidate_upd AFTER UPDATE ON chat.messages
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION chat.log_invalidation('sent_at');

ALTER TABLE chat.chatters_1m ADD COLUMN chatter text;
ALTER TABLE chat.chatters_1h ADD COLUMN chatter text;
ALTER TABLE chat.chatters_6h ADD COLUMN chatter text;
ALTER TABLE chat.chatters_1d ADD COLUMN chatter text;
COMMENT ON COLUMN chat.chatters_1m.chatter IS 'chat.chatter_key(user_id, user_login, user_name); NULL = messages without a user';

-- Rebuilt below from chat.messages; the old rows were keyed by user id alone.
TRUNCATE chat.chatters_1m, chat.chatters_1h, chat.chatters_6h, chat.chatters_1d,
         chat.activity_1m, chat.activity_1h;

DROP INDEX chat.chatters_1m_key;
DROP INDEX chat.chatters_1h_key;
DROP INDEX chat.chatters_6h_key;
DROP INDEX chat.chatters_1d_key;
CREATE UNIQUE INDEX chatters_1m_key ON chat.chatters_1m (channel_id, bucket, chatter) NULLS NOT DISTINCT;
CREATE UNIQUE INDEX chatters_1h_key ON chat.chatters_1h (channel_id, bucket, chatter) NULLS NOT DISTINCT;
CREATE UNIQUE INDEX chatters_6h_key ON chat.chatters_6h (channel_id, bucket, chatter) NULLS NOT DISTINCT;
CREATE UNIQUE INDEX chatters_1d_key ON chat.chatters_1d (channel_id, bucket, chatter) NULLS NOT DISTINCT;

-- As 0010's, but keyed by chatter, with every subscription kind, and with column lists.
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
            INSERT INTO chat.chatters_1m (bucket, channel_id, chatter, user_id, user_login,
                                          messages, emote_uses, chars, subs, raids, bits)
            SELECT chat.bucket_start(INTERVAL '1 minute', sent_at), channel_id,
                   chat.chatter_key(user_id, user_login, user_name),
                   max(user_id), max(user_login), count(*), sum(emote_count), sum(length(text)),
                   count(*) FILTER (WHERE kind IN ('sub', 'resub', 'extendsub', 'subgift',
                       'anonsubgift', 'submysterygift', 'anonsubmysterygift', 'giftpaidupgrade',
                       'anongiftpaidupgrade', 'primepaidupgrade', 'membership', 'membership_gift',
                       'membership_gift_received')),
                   count(*) FILTER (WHERE kind = 'raid'), sum(bits)
            FROM chat.messages WHERE sent_at >= r.lo AND sent_at < r.hi
            GROUP BY 1, 2, 3;

            DELETE FROM chat.activity_1m WHERE bucket >= r.lo AND bucket < r.hi;
            INSERT INTO chat.activity_1m (bucket, channel_id, messages, chatters, emote_uses,
                                          avg_length, subs, bits, raids, chars)
            SELECT bucket, channel_id, sum(messages), count(chatter), sum(emote_uses),
                   sum(chars)::double precision / nullif(sum(messages), 0),
                   sum(subs), sum(bits), sum(raids), sum(chars)
            FROM chat.chatters_1m WHERE bucket >= r.lo AND bucket < r.hi
            GROUP BY 1, 2;

            DELETE FROM chat.activity_1h WHERE bucket >= r.lo AND bucket < r.hi;
            INSERT INTO chat.activity_1h (bucket, channel_id, messages, chatters, emote_uses,
                                          avg_length, subs, bits, raids, chars)
            SELECT chat.bucket_start(INTERVAL '1 hour', bucket), channel_id, sum(messages),
                   count(DISTINCT chatter), sum(emote_uses),
                   sum(chars)::double precision / nullif(sum(messages), 0),
                   sum(subs), sum(bits), sum(raids), sum(chars)
            FROM chat.chatters_1m WHERE bucket >= r.lo AND bucket < r.hi
            GROUP BY 1, 2;

            DELETE FROM chat.chatters_1h WHERE bucket >= r.lo AND bucket < r.hi;
            INSERT INTO chat.chatters_1h (bucket, channel_id, chatter, user_id, user_login,
                                          messages, emote_uses, chars, subs, raids, bits)
            SELECT chat.bucket_start(INTERVAL '1 hour', bucket), channel_id, chatter,
                   max(user_id), max(user_login), sum(messages), sum(emote_uses), sum(chars),
                   sum(subs), sum(raids), sum(bits)
            FROM chat.chatters_1m WHERE bucket >= r.lo AND bucket < r.hi
            GROUP BY 1, 2, 3;

            lo6 := chat.bucket_start(INTERVAL '6 hours', r.lo);
            hi6 := chat.bucket_start(INTERVAL '6 hours', r.hi - INTERVAL '1 microsecond') + INTERVAL '6 hours';
            DELETE FROM chat.chatters_6h WHERE bucket >= lo6 AND bucket < hi6;
            INSERT INTO chat.chatters_6h (bucket, channel_id, chatter, user_id, user_login,
                                          messages, emote_uses, chars, subs, raids, bits)
            SELECT chat.bucket_start(INTERVAL '6 hours', bucket), channel_id, chatter,
                   max(user_id), max(user_login), sum(messages), sum(emote_uses), sum(chars),
                   sum(subs), sum(raids), sum(bits)
            FROM chat.chatters_1h WHERE bucket >= lo6 AND bucket < hi6
            GROUP BY 1, 2, 3;

            lo1d := chat.bucket_start(INTERVAL '1 day', r.lo);
            hi1d := chat.bucket_start(INTERVAL '1 day', r.hi - INTERVAL '1 microsecond') + INTERVAL '1 day';
            DELETE FROM chat.chatters_1d WHERE bucket >= lo1d AND bucket < hi1d;
            INSERT INTO chat.chatters_1d (bucket, channel_id, chatter, user_id, user_login,
                                          messages, emote_uses, chars, subs, raids, bits)
            SELECT chat.bucket_start(INTERVAL '1 day', bucket), channel_id, chatter,
                   max(user_id), max(user_login), sum(messages), sum(emote_uses), sum(chars),
                   sum(subs), sum(raids), sum(bits)
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

-- Recompute every chatter and activity aggregate from the whole history.
INSERT INTO chat.aggregate_invalidations (relation, lo, hi)
SELECT 'messages', min(sent_at), max(sent_at) FROM chat.messages HAVING count(*) > 0;
SELECT chat.refresh_aggregates();
