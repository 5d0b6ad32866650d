-- Named queries of the analyze job (analytics/), loaded by analytics.queries.
-- Each query starts at a "-- name: <name>" line and runs as one statement; parameters are
-- psycopg's %(name)s.  Chatters are counted by chat.chatter_key() everywhere.

-- name: snapshot
-- The current snapshot: rows committed after it are what the next pass reads.
SELECT pg_current_snapshot()::text;

-- name: state
-- The snapshot the last pass saw.
SELECT seen_snapshot::text FROM chat.analytics_state;

-- name: save_state
-- Remember the snapshot this pass saw.
INSERT INTO chat.analytics_state (id, seen_snapshot, updated_at)
VALUES (true, %(snap)s::pg_snapshot, now())
ON CONFLICT (id) DO UPDATE SET seen_snapshot = EXCLUDED.seen_snapshot, updated_at = now();

-- name: changed_all
-- First pass: every message, as (channel, block of one gap length) ranges; plus every hint.
SELECT channel_id, min(sent_at), max(sent_at)
FROM chat.messages
GROUP BY channel_id, date_bin(%(gap)s::interval, sent_at, TIMESTAMPTZ '2000-01-03')
UNION ALL
SELECT channel_id, at, at FROM chat.stream_hints;

-- name: changed_since
-- Rows whose inserting transaction the last pass's snapshot did not see (whatever their
-- sent_at: late rows, gap fill, replays of old chat) and hints added since.
SELECT channel_id, min(sent_at), max(sent_at)
FROM chat.messages
WHERE ingest_xid >= pg_snapshot_xmin(%(snap)s::pg_snapshot)
  AND NOT pg_visible_in_snapshot(ingest_xid, %(snap)s::pg_snapshot)
GROUP BY channel_id, date_bin(%(gap)s::interval, sent_at, TIMESTAMPTZ '2000-01-03')
UNION ALL
SELECT channel_id, at, at FROM chat.stream_hints
WHERE added_xid >= pg_snapshot_xmin(%(snap)s::pg_snapshot)
  AND NOT pg_visible_in_snapshot(added_xid, %(snap)s::pg_snapshot);

-- name: streams_near
-- The streams of a channel that a changed range may touch.
SELECT id, started_at, ended_at FROM chat.streams
WHERE channel_id = %(channel)s AND ended_at >= %(lo)s::timestamptz - %(gap)s::interval
  AND started_at <= %(hi)s::timestamptz + %(gap)s::interval
ORDER BY started_at;

-- name: islands
-- Runs of messages with no silence longer than the gap: (first, last, messages).
SELECT min(sent_at), max(sent_at), count(*)
FROM (
    SELECT sent_at, count(*) FILTER (WHERE brk) OVER (ORDER BY sent_at) AS island
    FROM (
        SELECT sent_at,
               coalesce(sent_at - lag(sent_at) OVER (ORDER BY sent_at) > %(gap)s::interval, true) AS brk
        FROM chat.messages
        WHERE channel_id = %(channel)s AND sent_at >= %(lo)s AND sent_at <= %(hi)s
    ) g
) i
GROUP BY island ORDER BY 1;

-- name: hints
-- Stream starts that replays and VOD files recorded (stream_hints).
SELECT h.at, h.found_by, h.title, h.category,
       (SELECT max(m.sent_at) FROM chat.messages m
        WHERE m.channel_id = h.channel_id AND m.sent_at < h.at AND m.sent_at >= %(lo)s) AS before
FROM chat.stream_hints h
WHERE h.channel_id = %(channel)s AND h.at >= %(lo)s::timestamptz - %(gap)s::interval
  AND h.at <= %(hi)s
ORDER BY h.at;

-- name: delete_streams
-- Drop streams that a recomputation merged into others.
DELETE FROM chat.streams WHERE id = ANY(%(ids)s);

-- name: update_stream
-- Rewrite one stream found again, keeping its id.
UPDATE chat.streams
SET started_at = %(started_at)s, ended_at = %(ended_at)s, found_by = %(found_by)s,
    title = %(title)s, category = %(category)s
WHERE id = %(id)s;

-- name: insert_stream
-- A new stream.
INSERT INTO chat.streams (channel_id, started_at, ended_at, found_by, title, category, messages,
                          chatters)
VALUES (%(channel)s, %(started_at)s, %(ended_at)s, %(found_by)s, %(title)s, %(category)s,
        %(messages)s, 0)
RETURNING id;

-- name: clear_stream_rows
-- Forget one stream's chatter rows before they are filled again.
DELETE FROM chat.stream_chatters WHERE stream_id = %(id)s;

-- name: fill_stream_chatters
-- A message is a duplicate when it repeats the chatter's own text in this stream (every copy
-- after the first) or is a copy of a text of at least 12 characters that 3 or more chatters
-- sent in this stream (copypasta).  Texts are compared in lower case with whitespace and the
-- invisible U+E0000 (which chat clients add to get past Twitch's duplicate filter) collapsed.
INSERT INTO chat.stream_chatters (stream_id, channel_id, started_at, chatter, login, messages,
                                  duplicates, emote_uses, chars, first_at, last_at, gaps,
                                  gap_mean_s, gap_cv)
WITH m AS MATERIALIZED (
    SELECT chat.chatter_key(user_id, user_login, user_name) AS chatter, user_login, sent_at,
           emote_count, length(text) AS chars,
           lower(btrim(regexp_replace(text, '[\s\U000E0000]+', ' ', 'g'))) AS norm
    FROM chat.messages
    WHERE channel_id = %(channel)s AND sent_at >= %(lo)s AND sent_at <= %(hi)s
      AND chat.chatter_key(user_id, user_login, user_name) IS NOT NULL
), per_text AS (
    SELECT chatter, norm, count(*) AS c FROM m GROUP BY 1, 2
), texts AS (
    SELECT norm, count(*) AS k FROM per_text GROUP BY 1
), dups AS (
    SELECT p.chatter,
           sum(CASE WHEN t.k >= 3 AND length(p.norm) >= 12 THEN p.c ELSE p.c - 1 END) AS n
    FROM per_text p JOIN texts t USING (norm) GROUP BY 1
), gaps AS (
    SELECT chatter, extract(epoch FROM sent_at - lag(sent_at) OVER (PARTITION BY chatter ORDER BY sent_at)) AS g
    FROM m
), gstat AS (
    SELECT chatter, count(g) AS n, avg(g) AS mean, stddev_pop(g) AS sd FROM gaps GROUP BY 1
)
SELECT %(id)s, %(channel)s, %(started_at)s, b.chatter, b.login, b.messages, d.n, b.emote_uses,
       b.chars, b.first_at, b.last_at, g.n, g.mean, g.sd / nullif(g.mean, 0)
FROM (
    SELECT chatter, max(user_login) AS login, count(*) AS messages, sum(emote_count) AS emote_uses,
           sum(chars) AS chars, min(sent_at) AS first_at, max(sent_at) AS last_at
    FROM m GROUP BY 1
) b
JOIN dups d USING (chatter)
JOIN gstat g USING (chatter);

-- name: assign_segments
-- The segment of each chatter as of each stream (history up to and including it), for the
-- chatters of streams that began at or after %(since)s; rules in the README ("Audience").
WITH ord AS (
    SELECT id, row_number() OVER (ORDER BY started_at) AS n
    FROM chat.streams WHERE channel_id = %(channel)s
), who AS (
    SELECT DISTINCT chatter FROM chat.stream_chatters
    WHERE channel_id = %(channel)s AND started_at >= %(since)s
), cum AS (
    SELECT sc.stream_id, sc.chatter, sc.started_at, sc.login, sc.messages, sc.duplicates,
           sc.gaps, sc.gap_cv,
           o.n - min(o.n) OVER w + 1 AS since_first,
           count(*) OVER w AS streams_so_far,
           sum(sc.messages) OVER w AS messages_so_far
    FROM chat.stream_chatters sc
    JOIN ord o ON o.id = sc.stream_id
    WHERE sc.channel_id = %(channel)s AND sc.chatter IN (SELECT chatter FROM who)
    WINDOW w AS (PARTITION BY sc.chatter ORDER BY o.n ROWS UNBOUNDED PRECEDING)
), judged AS (
    SELECT stream_id, chatter, streams_so_far = 1 AS first_time,
           CASE
               WHEN lower(login) = ANY(%(bots)s::text[])
                    OR (gaps >= %(bot_min_gaps)s AND gap_cv < %(bot_max_cv)s) THEN 'bot'
               WHEN messages >= %(spam_min_messages)s
                    AND duplicates >= %(spam_share)s * messages THEN 'spammer'
               WHEN streams_so_far = 1 THEN 'one-time'
               WHEN streams_so_far >= %(regular_share)s * since_first
                    AND messages_so_far >= %(power_per_stream)s * streams_so_far THEN 'power user'
               WHEN streams_so_far >= %(regular_share)s * since_first THEN 'regular'
               ELSE 'casual'
           END AS segment
    FROM cum WHERE started_at >= %(since)s
)
UPDATE chat.stream_chatters t
SET segment = j.segment, first_time = j.first_time
FROM judged j
WHERE t.stream_id = j.stream_id AND t.chatter = j.chatter
  AND (t.segment, t.first_time) IS DISTINCT FROM (j.segment, j.first_time);

-- name: fill_shape
-- One stream's deciles: messages, chatters, emote uses and mood per tenth of its duration.
INSERT INTO chat.stream_shape (stream_id, channel_id, decile, messages, chatters, emote_uses,
                               share, per_min, emote_share, mood)
WITH m AS (
    SELECT least(9, floor(10 * extract(epoch FROM m.sent_at - %(lo)s::timestamptz)
                          / greatest(extract(epoch FROM %(hi)s::timestamptz - %(lo)s::timestamptz), 1e-6)))::smallint AS decile,
           chat.chatter_key(m.user_id, m.user_login, m.user_name) AS chatter, m.emote_count,
           m.message_id, m.sent_at
    FROM chat.messages m
    WHERE m.channel_id = %(channel)s AND m.sent_at >= %(lo)s AND m.sent_at <= %(hi)s
), mood AS (
    SELECT m.decile, avg(s.sentiment) AS mood
    FROM m JOIN chat.message_scores s
      ON s.channel_id = %(channel)s AND s.message_id = m.message_id AND s.sent_at = m.sent_at
    WHERE s.sent_at >= %(lo)s AND s.sent_at <= %(hi)s
    GROUP BY 1
), d AS (SELECT generate_series(0, 9)::smallint AS decile)
SELECT %(id)s, %(channel)s, d.decile, count(m.decile), count(DISTINCT m.chatter),
       coalesce(sum(m.emote_count), 0),
       count(m.decile)::real / greatest(%(messages)s, 1),
       count(m.decile) / greatest(extract(epoch FROM %(hi)s::timestamptz - %(lo)s::timestamptz) / 600.0, 1.0 / 60),
       coalesce(sum(m.emote_count), 0)::real / greatest(count(m.decile), 1),
       max(mood.mood)
FROM d LEFT JOIN m USING (decile) LEFT JOIN mood USING (decile)
GROUP BY d.decile;

-- name: fill_emotes
-- One stream's emote uses.
INSERT INTO chat.stream_emotes (stream_id, channel_id, emote_name, uses)
SELECT %(id)s, %(channel)s, emote_name, sum(count)
FROM chat.emote_uses
WHERE channel_id = %(channel)s AND sent_at >= %(lo)s AND sent_at <= %(hi)s
GROUP BY emote_name;

-- name: summarize_stream
-- One stream's summary: chatters, new and returning, peak rate, mood, bursts, hype moments.
WITH sc AS (
    SELECT count(*) AS chatters, count(*) FILTER (WHERE first_time) AS new_chatters
    FROM chat.stream_chatters WHERE stream_id = %(id)s
), prev AS (
    SELECT id FROM chat.streams
    WHERE channel_id = %(channel)s AND started_at < %(lo)s ORDER BY started_at DESC LIMIT 1
), ret AS (
    SELECT (SELECT count(*) FROM chat.stream_chatters p WHERE p.stream_id = prev.id) AS previous,
           (SELECT count(*) FROM chat.stream_chatters p JOIN chat.stream_chatters c
              ON c.stream_id = %(id)s AND c.chatter = p.chatter WHERE p.stream_id = prev.id) AS retained
    FROM prev
), msg AS (
    SELECT count(*) AS messages, avg(length(text)) AS avg_length,
           coalesce(sum(emote_count), 0) AS emote_uses
    FROM chat.messages
    WHERE channel_id = %(channel)s AND sent_at >= %(lo)s AND sent_at <= %(hi)s
), peak AS (
    SELECT coalesce(max(n), 0) AS peak FROM (
        SELECT count(*) AS n FROM chat.messages
        WHERE channel_id = %(channel)s AND sent_at >= %(lo)s AND sent_at <= %(hi)s
        GROUP BY date_trunc('minute', sent_at)) x
), mood AS (
    SELECT count(*) AS scored, avg(sentiment) AS mood FROM chat.message_scores
    WHERE channel_id = %(channel)s AND sent_at >= %(lo)s AND sent_at <= %(hi)s
), em AS (
    SELECT coalesce(array_agg(emote_name ORDER BY uses DESC, emote_name), '{}') AS top FROM (
        SELECT emote_name, uses FROM chat.stream_emotes WHERE stream_id = %(id)s
        ORDER BY uses DESC, emote_name LIMIT 5) t
), ev AS (
    SELECT (SELECT count(*) FROM chat.emote_bursts WHERE channel_id = %(channel)s
              AND peak_at >= %(lo)s AND peak_at <= %(hi)s) AS bursts,
           (SELECT count(*) FROM chat.hype_moments WHERE channel_id = %(channel)s
              AND peak_at >= %(lo)s AND peak_at <= %(hi)s) AS hype
)
UPDATE chat.streams s
SET messages = msg.messages, chatters = sc.chatters, new_chatters = sc.new_chatters,
    returning_chatters = sc.chatters - sc.new_chatters,
    previous_chatters = (SELECT previous FROM ret), retained = (SELECT retained FROM ret),
    peak_per_min = peak.peak, avg_length = msg.avg_length, emote_uses = msg.emote_uses,
    scored = mood.scored, mood = mood.mood, top_emotes = em.top, bursts = ev.bursts,
    hype_moments = ev.hype, analyzed_at = now()
FROM sc, msg, peak, mood, em, ev
WHERE s.id = %(id)s;

-- name: streams_after
-- A channel's streams that start after a time (retention).
SELECT id, started_at, ended_at, messages FROM chat.streams
WHERE channel_id = %(channel)s AND started_at >= %(since)s ORDER BY started_at;

-- name: unscored_recent
-- Streams whose mood may still change: not every message scored yet, and ended within a day
-- of the channel's latest stream (the scorer runs behind the collector).
SELECT s.id, s.channel_id, s.started_at, s.ended_at, s.messages, s.scored
FROM chat.streams s
JOIN (SELECT channel_id, max(ended_at) AS last FROM chat.streams GROUP BY 1) l USING (channel_id)
WHERE s.scored < s.messages AND s.ended_at >= l.last - INTERVAL '1 day';

-- name: count_scored
-- How many messages of a stream are scored.
SELECT count(*) FROM chat.message_scores
WHERE channel_id = %(channel)s AND sent_at >= %(lo)s AND sent_at <= %(hi)s;
