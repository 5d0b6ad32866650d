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

-- name: all_channels
-- First pass: the channels whose chat is read as islands (every message is in one).
SELECT id FROM chat.channels ORDER BY id;

-- name: all_hints
-- First pass: every stream hint, as a range of its own.
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
-- Runs of messages with no silence longer than the gap: (first, last).  Walked along the
-- (channel_id, sent_at) index rather than read: from a message at ``at``, the last message at
-- most a gap later continues the run; when there is none the run ends at ``at`` and the next
-- one starts at the first message after ``at`` + gap.  Each step is one or two index probes,
-- and two steps advance more than a gap (a message of the next step's reach is later than
-- everything the step before could reach), so a stream takes at most about 2 x its duration /
-- gap steps (a few dozen for hours of chat at the default 30 minutes) and never more than its
-- messages: the runs of comparing every message with the one before, without reading them (a
-- stream of 400,000 messages: 0.3 s binned one gap wide, 1.0 s message by message).
WITH RECURSIVE walk (island, at) AS (
    SELECT f, f FROM (SELECT min(sent_at) AS f FROM chat.messages
                      WHERE channel_id = %(channel)s AND sent_at >= %(lo)s AND sent_at <= %(hi)s) s
    WHERE f IS NOT NULL
  UNION ALL
    SELECT CASE WHEN r.reach IS NULL THEN n.next ELSE w.island END, coalesce(r.reach, n.next)
    FROM walk w
    CROSS JOIN LATERAL (
        SELECT max(sent_at) AS reach FROM chat.messages
        WHERE channel_id = %(channel)s AND sent_at > w.at
          AND sent_at <= least(w.at + %(gap)s::interval, %(hi)s::timestamptz)) r
    CROSS JOIN LATERAL (
        SELECT min(sent_at) AS next FROM chat.messages
        WHERE r.reach IS NULL AND channel_id = %(channel)s
          AND sent_at > w.at + %(gap)s::interval AND sent_at <= %(hi)s) n
    WHERE r.reach IS NOT NULL OR n.next IS NOT NULL
)
SELECT island, max(at) FROM walk GROUP BY island ORDER BY island;

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

-- name: create_new_chatters
-- This transaction's new chatter rows (fill_stream) until assign_segments writes them with their
-- segments: each row is written to chat.stream_chatters once, not inserted and then updated
-- (a first pass over a month of a busy channel: 720,000 rows written twice, WAL and all).
CREATE TEMP TABLE IF NOT EXISTS new_chatters (LIKE chat.stream_chatters INCLUDING DEFAULTS)
ON COMMIT DROP;

-- name: create_fill_chatters
-- One stream's chatter rows from fill_stream until finish_stream adds their duplicate counts
-- (stream_duplicates, read on the second connection meanwhile) and moves them to new_chatters.
CREATE TEMP TABLE IF NOT EXISTS fill_chatters (LIKE chat.stream_chatters INCLUDING DEFAULTS)
ON COMMIT DROP;

-- name: analyze_new_chatters
-- The planner's figures of this transaction's new chatter rows (a temporary table has none).
ANALYZE pg_temp.new_chatters;

-- name: clear_stream_rows
-- Forget one stream's chatter, tenth and emote rows before they are filled again (also the new
-- chatter rows of this transaction: a stream that two changed windows reach is filled twice).
WITH c AS (DELETE FROM chat.stream_chatters WHERE stream_id = %(id)s),
     n AS (DELETE FROM pg_temp.new_chatters WHERE stream_id = %(id)s),
     e AS (DELETE FROM chat.stream_emotes WHERE stream_id = %(id)s)
DELETE FROM chat.stream_shape WHERE stream_id = %(id)s;

-- name: fill_stream
-- One stream from one read of its messages (analytics/runner.py): its chatter rows without
-- their duplicate counts (into pg_temp.fill_chatters; finish_stream adds the counts and moves
-- them to pg_temp.new_chatters, which assign_segments writes to stream_chatters), tenths
-- (stream_shape, without their mood) and the message figures of chat.streams (chatter counts
-- come later from summarize_audience).  The duplicates (stream_duplicates), emote counts
-- (stream_emote_counts) and mood (stream_mood) are read meanwhile on a second connection: the
-- two halves take about the same time, on two cores.
-- Speed (issue 15: a month of a busy channel is 30 reads of 333,000 messages): a message's
-- tenth is computed in integer microseconds (floor(10 e / d) exactly, where numeric division
-- cost a microsecond a row; numeric rounded at 16 digits, which cannot reach the next integer
-- for streams shorter than years); chatters are sorted for their gaps in the "C" collation
-- (byte order: the database's C.UTF-8 compares through the C library, with no abbreviated
-- keys) and grouped per chatter in that order (no hash of every chatter); the chatters of each
-- tenth are counted from a bit per tenth kept per chatter (not a group per chatter and tenth);
-- tenths and calendar minutes (the peak) are counted in one read; the gaps between a chatter's
-- messages are seconds in float8 (numeric's avg and stddev cost more than the rest of the
-- chatter figures).
WITH m AS MATERIALIZED (
    SELECT chat.chatter_key(user_id, user_login, user_name) AS chatter, user_login, sent_at,
           emote_count, length(text) AS len,
           least(9, 10 * round(date_part('epoch', sent_at - %(lo)s::timestamptz) * 1000000::float8)::bigint
                    / greatest(round(date_part('epoch', %(hi)s::timestamptz - %(lo)s::timestamptz) * 1000000::float8)::bigint, 1))::smallint AS decile
    FROM chat.messages
    WHERE channel_id = %(channel)s AND sent_at >= %(lo)s AND sent_at <= %(hi)s
), per_chatter AS (
    -- grouped in the order the window sorted the rows (byte order): no hash of every chatter;
    -- tenths is a bit per tenth of the stream the chatter wrote in (chatters per tenth)
    SELECT chatter COLLATE "C" AS chatter, max(user_login) AS login, count(*) AS messages,
           sum(emote_count) AS emote_uses, sum(len) AS chars, min(sent_at) AS first_at,
           max(sent_at) AS last_at, count(g) AS gaps, avg(g) AS gap_mean, stddev_pop(g) AS gap_sd,
           bit_or(1 << decile) AS tenths
    FROM (
        SELECT chatter, user_login, emote_count, len, sent_at, decile,
               date_part('epoch', sent_at - lag(sent_at) OVER (PARTITION BY chatter COLLATE "C" ORDER BY sent_at)) AS g
        FROM m WHERE chatter IS NOT NULL
    ) x
    GROUP BY chatter COLLATE "C"
), chatters AS (
    INSERT INTO pg_temp.fill_chatters (stream_id, channel_id, started_at, chatter, login, messages,
                                       emote_uses, chars, first_at, last_at, gaps, gap_mean_s,
                                       gap_cv)
    SELECT %(id)s, %(channel)s, %(lo)s, b.chatter, b.login, b.messages, b.emote_uses, b.chars,
           b.first_at, b.last_at, b.gaps, b.gap_mean, b.gap_sd / nullif(b.gap_mean, 0)
    FROM per_chatter b
), counts AS (
    -- one read of the rows for two groupings: by tenth, and by calendar minute (the peak)
    SELECT grouping(decile) AS by_minute, decile, count(*) AS messages,
           sum(emote_count) AS emote_uses, count(len) AS lengths, sum(len) AS chars
    FROM m
    GROUP BY GROUPING SETS ((decile), (date_bin('1 minute', sent_at, TIMESTAMPTZ '2000-01-03')))
), per_tenth AS (
    SELECT decile, messages, emote_uses, lengths, chars FROM counts WHERE by_minute = 0
), totals AS (
    SELECT coalesce(sum(messages), 0)::bigint AS messages,
           sum(chars)::numeric / nullif(sum(lengths), 0)::numeric AS avg_length,
           coalesce(sum(emote_uses), 0)::bigint AS emote_uses
    FROM per_tenth
), peak AS (
    SELECT coalesce(max(messages), 0) AS peak FROM counts WHERE by_minute = 1
), tenth_chatters AS (
    SELECT t.d::int - 1 AS d, t.chatters
    FROM (SELECT ARRAY[count(*) FILTER (WHERE tenths & 1 <> 0), count(*) FILTER (WHERE tenths & 2 <> 0),
                       count(*) FILTER (WHERE tenths & 4 <> 0), count(*) FILTER (WHERE tenths & 8 <> 0),
                       count(*) FILTER (WHERE tenths & 16 <> 0), count(*) FILTER (WHERE tenths & 32 <> 0),
                       count(*) FILTER (WHERE tenths & 64 <> 0), count(*) FILTER (WHERE tenths & 128 <> 0),
                       count(*) FILTER (WHERE tenths & 256 <> 0), count(*) FILTER (WHERE tenths & 512 <> 0)] AS a
          FROM per_chatter) x,
         unnest(x.a) WITH ORDINALITY AS t (chatters, d)
), tenths AS (
    SELECT p.decile, p.messages::bigint AS messages, coalesce(c.chatters, 0) AS chatters,
           p.emote_uses::bigint AS emote_uses
    FROM per_tenth p LEFT JOIN tenth_chatters c ON c.d = p.decile
), shape AS (
    INSERT INTO chat.stream_shape (stream_id, channel_id, decile, messages, chatters, emote_uses,
                                   share, per_min, emote_share, mood)
    SELECT %(id)s, %(channel)s, d.decile, coalesce(t.messages, 0), coalesce(t.chatters, 0),
           coalesce(t.emote_uses, 0),
           coalesce(t.messages, 0)::real / greatest(totals.messages, 1),
           coalesce(t.messages, 0) / greatest(extract(epoch FROM %(hi)s::timestamptz - %(lo)s::timestamptz) / 600.0, 1.0 / 60),
           coalesce(t.emote_uses, 0)::real / greatest(coalesce(t.messages, 0), 1), NULL
    FROM generate_series(0, 9) AS d (decile)
    CROSS JOIN totals
    LEFT JOIN tenths t ON t.decile = d.decile
)
UPDATE chat.streams s
SET messages = totals.messages, peak_per_min = peak.peak, avg_length = totals.avg_length,
    emote_uses = totals.emote_uses,
    bursts = (SELECT count(*) FROM chat.emote_bursts WHERE channel_id = %(channel)s
                AND peak_at >= %(lo)s AND peak_at <= %(hi)s),
    hype_moments = (SELECT count(*) FROM chat.hype_moments WHERE channel_id = %(channel)s
                      AND peak_at >= %(lo)s AND peak_at <= %(hi)s),
    analyzed_at = now()
FROM totals, peak
WHERE s.id = %(id)s;

-- name: stream_duplicates
-- Read-only, on the second connection while fill_stream runs: each chatter's duplicates in one
-- stream.  A message is a duplicate when it repeats the chatter's own text in this stream
-- (every copy after the first) or is a copy of a text of at least 12 characters that 3 or more
-- chatters sent in this stream (copypasta).  Texts are compared in lower case with whitespace
-- and the invisible U+E0000 (which chat clients add to get past Twitch's duplicate filter)
-- collapsed; each distinct text is normalized once and gets an integer id, so duplicates are
-- counted per (chatter, id), not per text.
WITH m AS MATERIALIZED (
    SELECT chat.chatter_key(user_id, user_login, user_name) AS chatter, text
    FROM chat.messages
    WHERE channel_id = %(channel)s AND sent_at >= %(lo)s AND sent_at <= %(hi)s
), norms AS MATERIALIZED (
    SELECT text, dense_rank() OVER (ORDER BY norm COLLATE "C") AS nid, length(norm) >= 12 AS long
    FROM (SELECT text, lower(btrim(regexp_replace(text, '[\s\U000E0000]+', ' ', 'g'))) AS norm
          FROM (SELECT DISTINCT text FROM m WHERE chatter IS NOT NULL) d) x
), per_text AS MATERIALIZED (
    SELECT m.chatter, n.nid, bool_or(n.long) AS long, count(*) AS c
    FROM m JOIN norms n USING (text) WHERE m.chatter IS NOT NULL GROUP BY 1, 2
), texts AS (
    SELECT nid, count(*) AS k FROM per_text GROUP BY 1
)
SELECT p.chatter, sum(CASE WHEN t.k >= 3 AND p.long THEN p.c ELSE p.c - 1 END)::bigint AS n
FROM per_text p JOIN texts t USING (nid)
GROUP BY 1;

-- name: stream_emote_counts
-- Read-only, on the second connection while fill_stream runs: one stream's uses per emote.
SELECT emote_name, sum(count)::bigint AS uses
FROM chat.emote_uses
WHERE channel_id = %(channel)s AND sent_at >= %(lo)s AND sent_at <= %(hi)s
GROUP BY emote_name;

-- name: stream_mood
-- Read-only (on the second connection while fill_stream runs, and when the scorer catches up):
-- one stream's scored messages and mean sentiment per tenth, and in all (decile NULL).  A
-- score's tenth is its message's (fill_stream: integer microseconds).
SELECT decile, count(*)::bigint AS scored, avg(sentiment)::float8 AS mood
FROM (
    SELECT least(9, 10 * round(date_part('epoch', sent_at - %(lo)s::timestamptz) * 1000000::float8)::bigint
                    / greatest(round(date_part('epoch', %(hi)s::timestamptz - %(lo)s::timestamptz) * 1000000::float8)::bigint, 1))::smallint AS decile,
           sentiment
    FROM chat.message_scores
    WHERE channel_id = %(channel)s AND sent_at >= %(lo)s AND sent_at <= %(hi)s
) s
GROUP BY ROLLUP (decile);

-- name: set_mood
-- One stream's mood from stream_mood: its tenths' (%(deciles)s, %(moods)s; a tenth with no
-- score keeps its mood) and in all (%(scored)s, %(mood)s).
WITH mo AS (
    SELECT * FROM unnest(%(deciles)s::smallint[], %(moods)s::float8[]) AS mo (decile, mood)
), shape AS (
    UPDATE chat.stream_shape sh SET mood = mo.mood
    FROM mo
    WHERE sh.stream_id = %(id)s AND sh.decile = mo.decile
)
UPDATE chat.streams
SET scored = %(scored)s, mood = %(mood)s, analyzed_at = now()
WHERE id = %(id)s;

-- name: finish_stream
-- One stream's chatter rows with their duplicate counts (from stream_duplicates, %(chatters)s
-- and %(duplicates)s) into pg_temp.new_chatters, its emote counts (stream_emote_counts) into
-- stream_emotes and its top 5 emotes.  A chatter the second connection did not see (a message
-- committed between the two reads) counts no duplicates until the next pass, which recomputes
-- the stream because that message is new.
WITH f AS (
    DELETE FROM pg_temp.fill_chatters RETURNING *
), d AS (
    SELECT * FROM unnest(%(chatters)s::text[], %(duplicates)s::bigint[]) AS d (chatter, n)
), chatters AS (
    INSERT INTO pg_temp.new_chatters (stream_id, channel_id, started_at, chatter, login, messages,
                                      duplicates, emote_uses, chars, first_at, last_at, gaps,
                                      gap_mean_s, gap_cv)
    SELECT f.stream_id, f.channel_id, f.started_at, f.chatter, f.login, f.messages,
           coalesce(d.n, 0), f.emote_uses, f.chars, f.first_at, f.last_at, f.gaps, f.gap_mean_s,
           f.gap_cv
    FROM f LEFT JOIN d ON d.chatter = f.chatter
), em AS (
    SELECT * FROM unnest(%(emotes)s::text[], %(uses)s::bigint[]) AS e (emote_name, uses)
), emotes AS (
    INSERT INTO chat.stream_emotes (stream_id, channel_id, emote_name, uses)
    SELECT %(id)s, %(channel)s, emote_name, uses FROM em
)
UPDATE chat.streams
SET top_emotes = (SELECT coalesce(array_agg(emote_name ORDER BY uses DESC, emote_name), '{}')
                  FROM (SELECT emote_name, uses FROM em ORDER BY uses DESC, emote_name LIMIT 5) t)
WHERE id = %(id)s;

-- name: assign_segments
-- The segment of each chatter as of each stream (history up to and including it), for the
-- chatter rows of streams that began at or after %(since)s; rules in the README ("Audience").
-- The history before %(since)s is read as one total per chatter (``before``), so an update
-- after a new hour sorts only the newest stream's rows.  The rows fill_stream wrote in this
-- transaction (pg_temp.new_chatters) are inserted with their segment; stored rows of later
-- streams are updated where their segment changed.
WITH ord AS (
    SELECT id, started_at, row_number() OVER (ORDER BY started_at) AS n
    FROM chat.streams WHERE channel_id = %(channel)s
), targets AS MATERIALIZED (
    SELECT id FROM chat.streams WHERE channel_id = %(channel)s AND started_at >= %(since)s
), recent AS MATERIALIZED (
    -- by stream id: the primary key's prefix, not a scan of the channel's rows
    SELECT sc.stream_id, sc.chatter, sc.login, sc.messages, sc.duplicates, sc.gaps, sc.gap_cv,
           o.n, false AS new
    FROM chat.stream_chatters sc JOIN ord o ON o.id = sc.stream_id
    WHERE sc.stream_id IN (SELECT id FROM targets)
    UNION ALL
    SELECT sc.stream_id, sc.chatter, sc.login, sc.messages, sc.duplicates, sc.gaps, sc.gap_cv,
           o.n, true
    FROM pg_temp.new_chatters sc JOIN ord o ON o.id = sc.stream_id
    WHERE sc.stream_id IN (SELECT id FROM targets)
), before AS MATERIALIZED (
    -- each current chatter's history before %(since)s: one aggregate per chatter over its
    -- entries in stream_chatters_chatter_idx alone (no hash of a month of rows); the first
    -- stream is the earliest start (its ordinal is looked up in ord once per chatter, below)
    SELECT c.chatter, h.first_at, h.streams, h.messages
    FROM (SELECT DISTINCT chatter FROM recent) c
    CROSS JOIN LATERAL (
        SELECT min(sc.started_at) AS first_at, count(*) AS streams, sum(sc.messages) AS messages
        FROM chat.stream_chatters sc
        WHERE sc.channel_id = %(channel)s AND sc.chatter = c.chatter AND sc.started_at < %(since)s
    ) h
    -- a first pass has no history: no probe per chatter
    WHERE h.streams > 0 AND EXISTS (SELECT FROM chat.streams
                  WHERE channel_id = %(channel)s AND started_at < %(since)s)
), cum AS (
    SELECT r.stream_id, r.chatter, r.login, r.messages, r.duplicates, r.gaps, r.gap_cv, r.new,
           r.n - coalesce(f.n, min(r.n) OVER w) + 1 AS since_first,
           coalesce(b.streams, 0) + count(*) OVER w AS streams_so_far,
           coalesce(b.messages, 0) + sum(r.messages) OVER w AS messages_so_far
    FROM recent r LEFT JOIN before b USING (chatter) LEFT JOIN ord f ON f.started_at = b.first_at
    -- byte order: the sort of a month of rows, without the C library's comparison
    WINDOW w AS (PARTITION BY r.chatter COLLATE "C" ORDER BY r.n ROWS UNBOUNDED PRECEDING)
), judged AS MATERIALIZED (
    SELECT stream_id, chatter, new, streams_so_far = 1 AS first_time,
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
    FROM cum
), added AS (
    INSERT INTO chat.stream_chatters (stream_id, channel_id, started_at, chatter, login, messages,
                                      duplicates, emote_uses, chars, first_at, last_at, gaps,
                                      gap_mean_s, gap_cv, first_time, segment)
    SELECT n.stream_id, n.channel_id, n.started_at, n.chatter, n.login, n.messages, n.duplicates,
           n.emote_uses, n.chars, n.first_at, n.last_at, n.gaps, n.gap_mean_s, n.gap_cv,
           j.first_time, j.segment
    FROM judged j JOIN pg_temp.new_chatters n USING (stream_id, chatter)
    WHERE j.new
    -- each stream's rows together, as when each stream wrote its own: a panel that reads one
    -- stream's chatters reads a few pages, not rows spread over a month of them
    ORDER BY n.stream_id, n.chatter
)
UPDATE chat.stream_chatters t
SET segment = j.segment, first_time = j.first_time
FROM judged j
WHERE NOT j.new AND t.stream_id = j.stream_id AND t.chatter = j.chatter
  AND t.stream_id IN (SELECT id FROM targets)
  AND (t.segment, t.first_time) IS DISTINCT FROM (j.segment, j.first_time);

-- name: summarize_audience
-- The chatter figures of a channel's streams from %(since)s: chatters, new and returning, and
-- how many of the previous stream's chatters came back.
WITH ord AS (
    SELECT id, started_at, lag(id) OVER (ORDER BY started_at) AS prev_id
    FROM chat.streams WHERE channel_id = %(channel)s
), target AS (
    SELECT id, prev_id FROM ord WHERE started_at >= %(since)s
), counts AS (
    SELECT t.id, count(sc.chatter) AS chatters, count(*) FILTER (WHERE sc.first_time) AS new_chatters
    FROM target t LEFT JOIN chat.stream_chatters sc ON sc.stream_id = t.id
    GROUP BY t.id
), prev AS (
    SELECT t.id, count(*) AS previous, count(c.chatter) AS retained
    FROM target t
    JOIN chat.stream_chatters p ON p.stream_id = t.prev_id
    LEFT JOIN chat.stream_chatters c ON c.stream_id = t.id AND c.chatter = p.chatter
    GROUP BY t.id
)
UPDATE chat.streams s
SET chatters = c.chatters, new_chatters = c.new_chatters,
    returning_chatters = c.chatters - c.new_chatters,
    previous_chatters = CASE WHEN t.prev_id IS NOT NULL THEN coalesce(p.previous, 0) END,
    retained = CASE WHEN t.prev_id IS NOT NULL THEN coalesce(p.retained, 0) END
FROM target t JOIN counts c USING (id) LEFT JOIN prev p USING (id)
WHERE s.id = t.id;

-- name: clear_stream_segments
-- Forget the segment counts of a channel's streams from %(since)s before they are counted again.
DELETE FROM chat.stream_segments
WHERE stream_id IN (SELECT id FROM chat.streams
                    WHERE channel_id = %(channel)s AND started_at >= %(since)s);

-- name: fill_stream_segments
-- The chatters per segment of a channel's streams from %(since)s (after assign_segments), read
-- by the Audience and Compare channels panels instead of counting chatter rows.
INSERT INTO chat.stream_segments (stream_id, channel_id, segment, chatters)
SELECT sc.stream_id, %(channel)s, sc.segment, count(*)
FROM chat.stream_chatters sc
WHERE sc.stream_id IN (SELECT id FROM chat.streams
                       WHERE channel_id = %(channel)s AND started_at >= %(since)s)
GROUP BY sc.stream_id, sc.segment;

-- name: chatter_rows_estimate
-- The planner's row count of chat.stream_chatters (decides when a pass runs ANALYZE on it).
SELECT greatest(reltuples, 0)::bigint AS rows FROM pg_class
WHERE oid = 'chat.stream_chatters'::regclass;

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

-- name: count_chatter_rows_since
-- How many chatter rows a channel has from a time (decides when a pass runs ANALYZE).
SELECT count(*) FROM chat.stream_chatters
WHERE stream_id IN (SELECT id FROM chat.streams
                    WHERE channel_id = %(channel)s AND started_at >= %(since)s);

-- name: refresh_channel_chatters
-- Each chatter's current segment (the one of their latest stream) for the chatters whose latest
-- stream may have changed: those with rows from %(since)s (their latest row is among those),
-- and those whose latest stream was from %(since)s but who have no row there any more (a
-- stream merged or deleted: their latest is found in the history).  Chatters left with no
-- row are dropped.
WITH recent AS MATERIALIZED (
    SELECT DISTINCT ON (chatter) chatter, login, segment, started_at
    FROM chat.stream_chatters
    WHERE stream_id IN (SELECT id FROM chat.streams
                        WHERE channel_id = %(channel)s AND started_at >= %(since)s)
    ORDER BY chatter, started_at DESC
), orphans AS MATERIALIZED (
    SELECT chatter FROM chat.channel_chatters
    WHERE channel_id = %(channel)s AND last_stream_at >= %(since)s
      AND chatter NOT IN (SELECT chatter FROM recent)
), older AS MATERIALIZED (
    SELECT DISTINCT ON (sc.chatter) sc.chatter, sc.login, sc.segment, sc.started_at
    FROM chat.stream_chatters sc
    WHERE sc.channel_id = %(channel)s AND sc.chatter IN (SELECT chatter FROM orphans)
    ORDER BY sc.chatter, sc.started_at DESC
), latest AS (
    SELECT * FROM recent UNION ALL SELECT * FROM older
), gone AS (
    DELETE FROM chat.channel_chatters cc
    WHERE cc.channel_id = %(channel)s AND cc.chatter IN (SELECT chatter FROM orphans)
      AND cc.chatter NOT IN (SELECT chatter FROM older)
)
INSERT INTO chat.channel_chatters AS cc (channel_id, chatter, login, segment, last_stream_at)
SELECT %(channel)s, chatter, login, segment, started_at FROM latest
ON CONFLICT (channel_id, chatter) DO UPDATE
SET login = EXCLUDED.login, segment = EXCLUDED.segment, last_stream_at = EXCLUDED.last_stream_at
WHERE (cc.login, cc.segment, cc.last_stream_at)
      IS DISTINCT FROM (EXCLUDED.login, EXCLUDED.segment, EXCLUDED.last_stream_at);

-- name: clear_channel_segments
-- Forget a channel's current segment counts before they are counted again.
DELETE FROM chat.channel_segments WHERE channel_id = %(channel)s;

-- name: fill_channel_segments
-- A channel's chatters per latest stream and segment (after refresh_channel_chatters), read by
-- the Audience "Current segments" panel instead of counting every chatter.
INSERT INTO chat.channel_segments (channel_id, last_stream_at, segment, chatters)
SELECT %(channel)s, last_stream_at, segment, count(*)
FROM chat.channel_chatters
WHERE channel_id = %(channel)s
GROUP BY last_stream_at, segment;
