-- Named queries of the report's topics section (chatpulse/app/report_topics.py).
-- Parameters: %(c)s channel id, [%(s)s, %(e)s) the report's range, %(bin)s an interval.

-- name: vectors_available
-- Whether this database has the vector tables (pgvector).
SELECT to_regclass('chat.window_embeddings') IS NOT NULL AS vectors

-- name: embedded_windows
-- How many windows of the range are embedded (only run where the vector tables exist).
SELECT count(*) AS windows FROM chat.window_embeddings
WHERE channel_id = %(c)s AND window_start >= %(s)s AND window_start < %(e)s

-- name: range_topics
-- The channel's topics present in the range, by their weight there (sum of window shares).
SELECT t.topic_id, t.label, t.terms, t.emotes, t.model, t.computed_at,
       sum(w.share) AS weight, count(DISTINCT w.window_start) AS windows
FROM chat.topics t
JOIN chat.window_topics w ON w.channel_id = t.channel_id AND w.topic_id = t.topic_id
WHERE t.channel_id = %(c)s AND w.window_start >= %(s)s AND w.window_start < %(e)s
GROUP BY t.topic_id, t.label, t.terms, t.emotes, t.model, t.computed_at
ORDER BY weight DESC, t.topic_id

-- name: topic_timeline
-- Topic weight per time bin (shares summed over the bin's windows).
SELECT date_bin(%(bin)s::interval, w.window_start, %(s)s::timestamptz) AS bin, w.topic_id,
       sum(w.share) AS weight
FROM chat.window_topics w
WHERE w.channel_id = %(c)s AND w.window_start >= %(s)s AND w.window_start < %(e)s
GROUP BY 1, 2
ORDER BY 1, 2

-- name: bin_terms
-- The five most distinctive terms of each time bin (z-scores of its windows summed).
SELECT bin, term, uses
FROM (
    SELECT date_bin(%(bin)s::interval, window_start, %(s)s::timestamptz) AS bin, term,
           sum(count) AS uses,
           row_number() OVER (
               PARTITION BY date_bin(%(bin)s::interval, window_start, %(s)s::timestamptz)
               ORDER BY sum(zscore) DESC, term
           ) AS r
    FROM chat.window_terms
    WHERE channel_id = %(c)s AND window_start >= %(s)s AND window_start < %(e)s
    GROUP BY 1, 2
) t
WHERE r <= 5
ORDER BY bin, r
