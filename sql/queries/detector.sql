-- Named queries of the detector (detector/runner.py), loaded by chatpulse.core.queries.
-- Parameters are psycopg placeholders; chatters are counted by chat.chatter_key().

-- name: read_state
-- Every channel with the detector's state for it (NULLs before its first pass).
SELECT c.id AS id, s.processed_until, s.first_message_at, s.last_message_at,
s.seen_snapshot::text AS seen_snapshot,
    pg_snapshot_xmin(s.seen_snapshot)::text AS snap_xmin, s.updated_at
FROM chat.channels c LEFT JOIN chat.detector_state s ON s.channel_id = c.id
ORDER BY c.id;

-- name: find_new_rows
-- New rows per channel and bucket since its last snapshot; the clock and this snapshot.
WITH fresh AS (
SELECT m.channel_id, floor(extract(epoch FROM m.sent_at) / %(b)s) AS bucket,
    count(*) AS n, min(m.sent_at) AS lo, max(m.sent_at) AS hi
FROM chat.messages m
JOIN unnest(%(ids)s::int[], %(snaps)s::pg_snapshot[]) AS s(channel_id, snap)
    ON s.channel_id = m.channel_id
WHERE m.ingest_xid >= %(xmin)s::xid8
    AND NOT pg_visible_in_snapshot(m.ingest_xid, s.snap)
GROUP BY 1, 2
UNION ALL
SELECT m.channel_id, floor(extract(epoch FROM m.sent_at) / %(b)s),
    count(*), min(m.sent_at), max(m.sent_at)
FROM chat.messages m WHERE m.channel_id = ANY(%(new)s::int[]) GROUP BY 1, 2)
SELECT now() AS db_now, pg_current_snapshot()::text AS snapshot, f.channel_id, f.n, f.lo, f.hi
FROM (VALUES (1)) AS one (x) LEFT JOIN fresh f ON true;

-- name: try_lock_channels
-- The channels of the list whose advisory lock this transaction takes (others are busy).
SELECT id FROM unnest(%(ids)s::int[]) AS id WHERE pg_try_advisory_xact_lock(%(namespace)s, id);

-- name: stored_events
-- Bursts ('b') and hype moments ('h') already stored over each range k (the columns of the
-- other kind are NULL; real columns read as float8, as the detector compares them).
WITH r AS (SELECT * FROM unnest(%(k)s::int[], %(c)s::int[], %(lo)s::timestamptz[],
%(hi)s::timestamptz[]) AS r(k, c, lo, hi))
SELECT r.k, 'b' AS kind, e.emote_name, e.started_at, e.ended_at, e.peak_at,
    e.score::float8 AS score, e.peak_uses, e.baseline::float8 AS baseline, e.total_uses,
    e.peak_messages, e.baseline_messages::float8 AS baseline_messages,
    NULL::float8 AS messages_per_min, NULL::float8 AS baseline_per_min
FROM r JOIN chat.emote_bursts e ON e.channel_id = r.c AND e.ended_at > r.lo
    AND e.started_at < r.hi
UNION ALL
SELECT r.k, 'h', '', h.started_at, h.ended_at, h.peak_at, h.score::float8, NULL, NULL, NULL,
    NULL, NULL, h.messages_per_min::float8, h.baseline_per_min::float8
FROM r JOIN chat.hype_moments h ON h.channel_id = r.c AND h.ended_at > r.lo
    AND h.started_at < r.hi;

-- name: message_buckets
-- Messages and distinct chatters per range k and bucket (s seconds long).
SELECT r.k, floor(extract(epoch FROM m.sent_at) / %(s)s)::bigint AS hop, count(*) AS messages,
count(DISTINCT chat.chatter_key(m.user_id, m.user_login, m.user_name)) AS chatters
FROM unnest(%(k)s::int[], %(c)s::int[],
%(lo)s::timestamptz[], %(hi)s::timestamptz[]) AS r(k, c, lo, hi) JOIN chat.messages m
ON m.channel_id = r.c AND m.sent_at >= r.lo AND m.sent_at < r.hi GROUP BY 1, 2;

-- name: emote_buckets
-- Messages using each emote and its uses, per range k and bucket.
SELECT r.k, floor(extract(epoch FROM e.sent_at) / %(s)s)::bigint AS hop, e.emote_name,
count(DISTINCT e.message_id) AS messages, sum(e.count) AS uses FROM unnest(%(k)s::int[], %(c)s::int[],
%(lo)s::timestamptz[], %(hi)s::timestamptz[]) AS r(k, c, lo, hi)
JOIN chat.emote_uses e ON e.channel_id = r.c AND e.sent_at >= r.lo
AND e.sent_at < r.hi GROUP BY 1, 2, 3;

-- name: save_state
-- Remember each channel's processed range and the snapshot this pass saw.
INSERT INTO chat.detector_state AS d (channel_id, processed_until,
first_message_at, last_message_at, seen_snapshot, updated_at)
SELECT u.c, u.pu, u.fm, u.lm, %(snapshot)s::pg_snapshot, now()
FROM unnest(%(ids)s::int[], %(processed)s::timestamptz[], %(first)s::timestamptz[],
    %(last)s::timestamptz[]) AS u(c, pu, fm, lm)
ON CONFLICT (channel_id) DO UPDATE SET processed_until = excluded.processed_until,
first_message_at = excluded.first_message_at,
last_message_at = excluded.last_message_at,
seen_snapshot = excluded.seen_snapshot, updated_at = now();

-- name: count_chatters
-- Distinct chatters of a channel in [lo, hi).
SELECT count(DISTINCT chat.chatter_key(user_id, user_login, user_name))
FROM chat.messages
WHERE channel_id = %(c)s AND sent_at >= %(lo)s AND sent_at < %(hi)s;

-- name: top_emotes
-- A channel's most used emotes in [lo, hi).
SELECT emote_name FROM chat.emote_uses
WHERE channel_id = %(c)s AND sent_at >= %(lo)s AND sent_at < %(hi)s
GROUP BY 1 ORDER BY sum(count) DESC, 1 LIMIT %(n)s;

-- name: avg_sentiment
-- Mean sentiment in [lo, hi) by the model that scored the most of its messages.
SELECT avg(sentiment) FROM chat.message_scores
WHERE channel_id = %(c)s AND sent_at >= %(lo)s AND sent_at < %(hi)s
GROUP BY model ORDER BY count(*) DESC, model LIMIT 1;

-- name: upsert_moment
-- Store one hype moment; a row that did not change is not rewritten.
INSERT INTO chat.hype_moments AS h (channel_id, started_at, peak_at, ended_at, score,
messages_per_min, baseline_per_min, chatters, top_emotes, avg_sentiment,
sample_messages) VALUES (%(c)s, %(lo)s, %(peak)s, %(hi)s, %(score)s, %(per_min)s,
%(baseline_per_min)s, %(chatters)s, %(top_emotes)s, %(sentiment)s, %(samples)s)
ON CONFLICT (channel_id, started_at) DO UPDATE SET peak_at = excluded.peak_at,
ended_at = excluded.ended_at, score = excluded.score,
messages_per_min = excluded.messages_per_min,
baseline_per_min = excluded.baseline_per_min, chatters = excluded.chatters,
top_emotes = excluded.top_emotes, avg_sentiment = excluded.avg_sentiment,
sample_messages = excluded.sample_messages
WHERE (h.peak_at, h.ended_at, h.score, h.chatters, h.top_emotes, h.avg_sentiment,
    h.sample_messages) IS DISTINCT FROM (excluded.peak_at, excluded.ended_at,
    excluded.score, excluded.chatters, excluded.top_emotes, excluded.avg_sentiment,
    excluded.sample_messages);

-- name: sample_messages
-- A channel's chat and action messages in [lo, hi), in order.
SELECT user_login, text, sent_at FROM chat.messages
WHERE channel_id = %(c)s AND sent_at >= %(lo)s AND sent_at < %(hi)s
AND kind IN ('chat', 'action') ORDER BY sent_at, message_id;

-- name: upsert_bursts
-- Store one channel's emote bursts; a row that did not change is not rewritten.
INSERT INTO chat.emote_bursts AS e (channel_id, emote_name, provider, started_at,
ended_at, peak_at, peak_uses, baseline, score, total_uses, peak_messages,
baseline_messages)
SELECT %(c)s, u.name, (SELECT max(p.provider) FROM chat.emote_uses p
    WHERE p.channel_id = %(c)s AND p.emote_name = u.name AND p.sent_at >= u.st
    AND p.sent_at < u.en), u.st, u.en, u.pk, u.pu, u.bl, u.sc, u.tu, u.pm, u.bm
FROM unnest(%(name)s::text[], %(st)s::timestamptz[], %(en)s::timestamptz[],
    %(pk)s::timestamptz[], %(pu)s::int[], %(bl)s::real[], %(sc)s::real[],
    %(tu)s::int[], %(pm)s::int[], %(bm)s::real[])
    AS u(name, st, en, pk, pu, bl, sc, tu, pm, bm)
ON CONFLICT (channel_id, emote_name, started_at) DO UPDATE SET
provider = excluded.provider, peak_at = excluded.peak_at,
ended_at = excluded.ended_at, peak_uses = excluded.peak_uses,
baseline = excluded.baseline, score = excluded.score,
total_uses = excluded.total_uses, peak_messages = excluded.peak_messages,
baseline_messages = excluded.baseline_messages
WHERE (e.peak_at, e.ended_at, e.peak_uses, e.total_uses, e.score,
    e.baseline, e.peak_messages, e.baseline_messages, e.provider)
    IS DISTINCT FROM (excluded.peak_at, excluded.ended_at, excluded.peak_uses,
    excluded.total_uses, excluded.score, excluded.baseline,
    excluded.peak_messages, excluded.baseline_messages, excluded.provider);

-- name: delete_bursts
-- Remove one channel's bursts that the new pass no longer finds.
DELETE FROM chat.emote_bursts e USING unnest(%(name)s::text[], %(st)s::timestamptz[])
AS d(name, st) WHERE e.channel_id = %(c)s AND e.emote_name = d.name
AND e.started_at = d.st;

-- name: delete_moments
-- Remove one channel's hype moments that the new pass no longer finds.
DELETE FROM chat.hype_moments WHERE channel_id = %(c)s
AND started_at = ANY(%(st)s::timestamptz[]);
