-- Named queries of the hype forecast (forecast/store.py), loaded by chatpulse.core.queries.
-- Parameters are psycopg's %(name)s placeholders.

-- name: channels
-- The channels to forecast: one, or every channel.
SELECT c.id, c.name
FROM chat.channels c
WHERE %(channel)s::text IS NULL OR c.name = lower(%(channel)s::text)
ORDER BY c.id;

-- name: extent
-- The channel's chat and how far the detector judged it (labels are known up to there).
SELECT min(m.sent_at), max(m.sent_at),
       (SELECT s.processed_until FROM chat.detector_state s WHERE s.channel_id = %(channel)s),
       (SELECT max(f.at) FROM chat.hype_forecasts f WHERE f.channel_id = %(channel)s),
       now()
FROM chat.messages m
WHERE m.channel_id = %(channel)s;

-- name: hops
-- Per hop: messages, distinct chatters, messages with an emote (per emote, summed), the top
-- emote's messages, and the mean sentiment of the model that scored most of the range.
WITH m AS (
    SELECT floor(extract(epoch FROM sent_at) / %(step)s)::bigint AS hop, count(*) AS messages,
           count(DISTINCT chat.chatter_key(user_id, user_login, user_name)) AS chatters
    FROM chat.messages
    WHERE channel_id = %(channel)s AND sent_at >= %(lo)s AND sent_at < %(hi)s
    GROUP BY 1
), per_emote AS (
    SELECT floor(extract(epoch FROM sent_at) / %(step)s)::bigint AS hop, emote_name,
           count(DISTINCT message_id) AS n
    FROM chat.emote_uses
    WHERE channel_id = %(channel)s AND sent_at >= %(lo)s AND sent_at < %(hi)s
    GROUP BY 1, 2
), e AS (
    SELECT hop, sum(n) AS emote_messages, max(n) AS top_emote FROM per_emote GROUP BY 1
), model AS (
    SELECT model FROM chat.message_scores
    WHERE channel_id = %(channel)s AND sent_at >= %(lo)s AND sent_at < %(hi)s
    GROUP BY model ORDER BY count(*) DESC, model LIMIT 1
), s AS (
    SELECT floor(extract(epoch FROM sent_at) / %(step)s)::bigint AS hop,
           avg(sentiment)::float8 AS sentiment
    FROM chat.message_scores
    WHERE channel_id = %(channel)s AND sent_at >= %(lo)s AND sent_at < %(hi)s
      AND model = (SELECT model FROM model)
    GROUP BY 1
)
SELECT m.hop, m.messages, m.chatters, coalesce(e.emote_messages, 0), coalesce(e.top_emote, 0),
       s.sentiment
FROM m LEFT JOIN e ON e.hop = m.hop LEFT JOIN s ON s.hop = m.hop
ORDER BY m.hop;

-- name: moments
-- The channel's detected hype moments (the labels).
SELECT started_at, peak_at, ended_at
FROM chat.hype_moments
WHERE channel_id = %(channel)s
ORDER BY peak_at;

-- name: write
-- Store the forecast of each hop; a hop forecast again keeps its first answer.
INSERT INTO chat.hype_forecasts AS f (channel_id, at, probability, likely, horizon_s, threshold,
                                      trained_moments, trained_at)
SELECT %(channel)s, u.at, u.p, u.p >= %(threshold)s, %(horizon)s, %(threshold)s, %(moments)s,
       %(trained_at)s
FROM unnest(%(at)s::timestamptz[], %(p)s::real[]) AS u(at, p)
ON CONFLICT (channel_id, at) DO UPDATE SET
    probability = excluded.probability, likely = excluded.likely,
    horizon_s = excluded.horizon_s, threshold = excluded.threshold,
    trained_moments = excluded.trained_moments, trained_at = excluded.trained_at,
    written_at = now();
