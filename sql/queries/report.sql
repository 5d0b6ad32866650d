-- Named queries of `chatpulse report` (chatpulse/app/report.py, report_streams.py), loaded by
-- chatpulse.core.queries.load_queries("report").  Parameters: %(c)s the channel id, %(s)s and
-- %(e)s the report's range [start, end).  The report reads only the public relations.

-- name: channel_range
-- The channel of a login (the one with the most messages when several platforms share it) and
-- the time of its first and last message.
SELECT c.id, min(m.sent_at) AS first, max(m.sent_at) AS last
FROM chat.channels c LEFT JOIN chat.messages m ON m.channel_id = c.id
WHERE c.name = %(name)s
GROUP BY c.id ORDER BY count(m.*) DESC LIMIT 1;

-- name: activity
-- Messages, chatters, emote uses, subs and bits per minute.
SELECT bucket, messages, chatters, emote_uses, subs, bits FROM chat.activity_1m
WHERE channel_id = %(c)s AND bucket >= date_trunc('minute', %(s)s::timestamptz) AND bucket < %(e)s
ORDER BY bucket;

-- name: sentiment
-- Minute mood and emotions: all models' rows weighted by how many messages each scored.
SELECT bucket, sum(scored) AS scored,
       sum(avg_sentiment * scored) / nullif(sum(scored), 0) AS mood,
       sum(joy * scored) / nullif(sum(scored), 0) AS joy,
       sum(love * scored) / nullif(sum(scored), 0) AS love,
       sum(surprise * scored) / nullif(sum(scored), 0) AS surprise,
       sum(anticipation * scored) / nullif(sum(scored), 0) AS anticipation,
       sum(sadness * scored) / nullif(sum(scored), 0) AS sadness,
       sum(anger * scored) / nullif(sum(scored), 0) AS anger,
       sum(fear * scored) / nullif(sum(scored), 0) AS fear,
       sum(disgust * scored) / nullif(sum(scored), 0) AS disgust,
       sum(trust * scored) / nullif(sum(scored), 0) AS trust,
       sum(toxic) AS toxic
FROM chat.sentiment_1m
WHERE channel_id = %(c)s AND bucket >= date_trunc('minute', %(s)s::timestamptz) AND bucket < %(e)s
GROUP BY bucket ORDER BY bucket;

-- name: top_emotes
-- The 15 most used emotes, from the stored uses over exactly [start, end) (the 10 s buckets of
-- emotes_10s do not line up with a range that starts or ends inside one).
SELECT emote_name, provider, sum(count) AS uses FROM chat.emote_uses
WHERE channel_id = %(c)s AND sent_at >= %(s)s AND sent_at < %(e)s
GROUP BY 1, 2 ORDER BY uses DESC, emote_name, provider LIMIT 15;

-- name: bursts
-- The 20 strongest emote bursts peaking in the range.
SELECT emote_name, started_at, peak_at, ended_at, peak_uses, baseline, score
FROM chat.emote_bursts
WHERE channel_id = %(c)s AND peak_at >= %(s)s AND peak_at < %(e)s
ORDER BY score DESC LIMIT 20;

-- name: hype
-- Hype moments peaking in the range, strongest first.
SELECT h.id, h.started_at, h.peak_at, h.ended_at, h.score, h.messages_per_min,
       h.baseline_per_min, h.chatters, h.top_emotes, h.avg_sentiment, h.sample_messages
FROM chat.hype_moments h
WHERE h.channel_id = %(c)s AND h.peak_at >= %(s)s AND h.peak_at < %(e)s
ORDER BY h.score DESC, h.peak_at;

-- name: clips
-- Clips overlapping the range.
SELECT id, start_at, end_at, status, location, duration_s, hype_moment_id
FROM chat.clips
WHERE channel_id = %(c)s AND start_at < %(e)s AND end_at > %(s)s
ORDER BY start_at;

-- name: totals
-- Messages, chatters (chat.chatter_key) and emote uses of the range.
SELECT count(*) AS messages,
       count(DISTINCT chat.chatter_key(user_id, user_login, user_name)) AS chatters,
       sum(emote_count) AS emote_uses
FROM chat.messages
WHERE channel_id = %(c)s AND sent_at >= %(s)s AND sent_at < %(e)s;

-- name: moderation
-- Moderation against toxicity (the views of migration 0015): toxic messages sent in the range
-- and what became of them, and the actions from the range's start to 10 minutes after its end
-- (the time an action may take to answer a toxic message of the range).
SELECT count(*) AS toxic, count(acted_at) AS acted,
       count(*) FILTER (WHERE never_acted) AS never_acted,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_s)
           FILTER (WHERE acted_at IS NOT NULL) AS median_latency_s,
       (SELECT count(*) FROM chat.moderation_events e WHERE e.channel_id = %(c)s
          AND e.at >= %(s)s AND e.at < %(e)s::timestamptz + INTERVAL '10 minutes'
          AND e.kind = 'ban') AS bans,
       (SELECT count(*) FROM chat.moderation_events e WHERE e.channel_id = %(c)s
          AND e.at >= %(s)s AND e.at < %(e)s::timestamptz + INTERVAL '10 minutes'
          AND e.kind = 'timeout') AS timeouts,
       (SELECT count(*) FROM chat.moderation_events e WHERE e.channel_id = %(c)s
          AND e.at >= %(s)s AND e.at < %(e)s::timestamptz + INTERVAL '10 minutes'
          AND e.kind = 'delete') AS deletions,
       (SELECT count(*) FROM chat.messages m WHERE m.channel_id = %(c)s AND m.is_mod
          AND m.sent_at >= %(s)s AND m.sent_at < %(e)s) AS mod_messages
FROM chat.toxic_messages
WHERE channel_id = %(c)s AND sent_at >= %(s)s AND sent_at < %(e)s;

-- name: moderators
-- The 10 moderators who wrote most in the range.
SELECT coalesce(user_login, user_name, user_id) AS moderator, count(*) AS messages
FROM chat.messages
WHERE channel_id = %(c)s AND is_mod AND sent_at >= %(s)s AND sent_at < %(e)s
GROUP BY 1 ORDER BY messages DESC, moderator LIMIT 10;

-- name: stream_firsts
-- Where each stream begins: a minute bucket with chat after more than %(silence)s without.
SELECT bucket FROM (
    SELECT bucket, bucket - lag(bucket) OVER (ORDER BY bucket) AS gap
    FROM chat.activity_1m WHERE channel_id = %(c)s AND messages > 0 AND bucket < %(e)s
) b
WHERE gap IS NULL OR gap > %(silence)s + interval '1 minute'
ORDER BY bucket;

-- name: recorded_start
-- The stream start a replay recorded: sent_at minus content_offset_seconds, from the first
-- message of [a, b) that carries one.
SELECT sent_at - (extra->>'content_offset_seconds')::float8 * interval '1 second' AS start
FROM chat.messages
WHERE channel_id = %(c)s AND sent_at >= %(a)s AND sent_at < %(b)s
  AND extra->>'content_offset_seconds' ~ '^[0-9]{1,9}([.][0-9]*)?$'
ORDER BY sent_at LIMIT 1;

-- name: first_message
-- The first message of the minute bucket %(a)s.
SELECT min(sent_at) AS m FROM chat.messages
WHERE channel_id = %(c)s AND sent_at >= %(a)s AND sent_at < %(a)s + interval '1 minute';

-- name: vod_start
-- The start of the VOD (chat.vods) that covers the message at %(m)s.
SELECT start_at FROM chat.vods
WHERE channel_id = %(c)s AND start_at <= %(m)s AND start_at > %(m)s - interval '1 day'
  AND (duration_s IS NULL OR start_at + duration_s * interval '1 second' > %(m)s)
ORDER BY start_at DESC LIMIT 1;

-- name: analyzed_stream
-- The newest analyzed stream (chatpulse analyze) overlapping the range.
SELECT id, started_at, ended_at, duration_s, found_by, messages, chatters, new_chatters,
       returning_chatters, previous_chatters, retained, peak_per_min, mood, emote_uses,
       messages / nullif(duration_s / 60.0, 0) AS per_min,
       new_chatters::float8 / nullif(chatters, 0) AS first_time_share,
       emote_uses::float8 / nullif(messages, 0) AS emotes_per_message
FROM chat.streams
WHERE channel_id = %(c)s AND ended_at >= %(s)s AND started_at < %(e)s
ORDER BY started_at DESC LIMIT 1;

-- name: stream_shape
-- The stream's tenths against the channel's usual stream.
SELECT sh.decile, sh.share, sh.per_min, sh.mood, sh.emote_share, cs.streams,
       cs.share AS usual_share, cs.per_min AS usual_per_min, cs.mood AS usual_mood,
       cs.emote_share AS usual_emote_share
FROM chat.stream_shape sh
JOIN chat.channel_shape cs ON cs.channel_id = sh.channel_id AND cs.decile = sh.decile
WHERE sh.stream_id = %(id)s
ORDER BY sh.decile;

-- name: stream_segments
-- The stream's chatters per segment.
SELECT segment, count(*) AS chatters, sum(messages) AS messages,
       count(*) FILTER (WHERE first_time) AS first_time
FROM chat.stream_chatters WHERE stream_id = %(id)s
GROUP BY 1 ORDER BY 2 DESC, 1;

-- name: usual_stream
-- The channel's usual stream: the mean over its other analyzed streams.
SELECT count(*) AS streams, avg(duration_s) AS duration_s, avg(messages) AS messages,
       avg(chatters) AS chatters, avg(messages / nullif(duration_s / 60.0, 0)) AS per_min,
       avg(new_chatters::float8 / nullif(chatters, 0)) AS first_time_share,
       avg(peak_per_min) AS peak_per_min, avg(mood) AS mood,
       avg(emote_uses::float8 / nullif(messages, 0)) AS emotes_per_message
FROM chat.streams WHERE channel_id = %(c)s AND id <> %(id)s;
