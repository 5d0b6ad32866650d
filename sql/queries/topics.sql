-- Named queries of the topics package (topics.queries loads them by name).
-- Windows: 30 s per channel, date_bin('30 seconds', sent_at, TIMESTAMPTZ '2000-01-01 00:00+00').
-- Parameters are psycopg's %(name)s.

-- name: vectors_available
-- Whether this database has the vector tables (pgvector).
SELECT to_regclass('chat.window_embeddings') IS NOT NULL

-- name: enable_vectors
-- Create the vector tables where pgvector is available.
SELECT chat.enable_vectors()

-- name: embed_state
-- The embedding loop's progress for a model (created on first use).
INSERT INTO chat.embed_state AS s (model) VALUES (%(model)s)
ON CONFLICT (model) DO UPDATE SET model = s.model
RETURNING last_seq

-- name: save_embed_state
-- Remember how far the embedding loop got.
UPDATE chat.embed_state SET last_seq = greatest(last_seq, %(seq)s), updated_at = now()
WHERE model = %(model)s

-- name: new_windows
-- Windows touched by messages after the watermark whose transactions are settled (no older
-- transaction is still in flight), with the seq range seen per window.
SELECT m.channel_id,
       date_bin('30 seconds', m.sent_at, TIMESTAMPTZ '2000-01-01 00:00+00') AS window_start,
       min(m.ingest_seq) AS min_seq,
       max(m.ingest_seq) AS max_seq
FROM (
    SELECT channel_id, sent_at, ingest_seq FROM chat.messages
    WHERE ingest_seq > %(after)s
      AND ingest_xid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY ingest_seq
    LIMIT %(limit)s
) m
GROUP BY 1, 2

-- name: window_texts
-- Distinct texts of the given windows with how often each was sent there.
SELECT w.channel_id, w.window_start, md5(m.text) AS text_hash, min(m.text) AS text,
       count(*)::int AS n
FROM unnest(%(channels)s::int[], %(starts)s::timestamptz[]) AS w (channel_id, window_start)
JOIN chat.messages m
  ON m.channel_id = w.channel_id
 AND m.sent_at >= w.window_start AND m.sent_at < w.window_start + interval '30 seconds'
WHERE m.text <> ''
GROUP BY 1, 2, 3

-- name: range_texts
-- Distinct texts per window of one channel over a range.
SELECT date_bin('30 seconds', m.sent_at, TIMESTAMPTZ '2000-01-01 00:00+00') AS window_start,
       md5(m.text) AS text_hash, min(m.text) AS text, count(*)::int AS n
FROM chat.messages m
WHERE m.channel_id = %(channel_id)s AND m.sent_at >= %(start)s AND m.sent_at < %(end)s
  AND m.text <> ''
GROUP BY 1, 2

-- name: missing_hashes
-- Which of these distinct texts have no embedding yet.
SELECT h FROM unnest(%(hashes)s::text[]) AS h
WHERE NOT EXISTS (
    SELECT 1 FROM chat.text_embeddings e WHERE e.model = %(model)s AND e.text_hash = h
)

-- name: insert_text_embedding
-- Store the embedding of one distinct text.
INSERT INTO chat.text_embeddings (model, text_hash, embedding)
VALUES (%(model)s, %(hash)s, %(vec)s::vector)
ON CONFLICT DO NOTHING

-- name: text_vectors
-- The stored embeddings of these distinct texts.
SELECT text_hash, embedding::text FROM chat.text_embeddings
WHERE model = %(model)s AND text_hash = ANY(%(hashes)s::text[])

-- name: upsert_window
-- Store a window's embedding (the weighted mean of its texts') and its words for full text.
INSERT INTO chat.window_embeddings
    (channel_id, window_start, window_end, model, messages, distinct_texts, embedding, document)
VALUES (%(channel_id)s, %(start)s, %(start)s + interval '30 seconds', %(model)s, %(messages)s,
        %(distinct)s, %(vec)s::vector,
        (SELECT to_tsvector('simple', string_agg(m.text, ' ' ORDER BY m.sent_at, m.message_id))
         FROM chat.messages m
         WHERE m.channel_id = %(channel_id)s AND m.sent_at >= %(start)s
           AND m.sent_at < %(start)s + interval '30 seconds'))
ON CONFLICT (channel_id, window_start) DO UPDATE
SET model = EXCLUDED.model, messages = EXCLUDED.messages,
    distinct_texts = EXCLUDED.distinct_texts, embedding = EXCLUDED.embedding,
    document = EXCLUDED.document, computed_at = now()

-- name: channel_ids
-- Channel ids by name.
SELECT id, name FROM chat.channels WHERE name = ANY(%(names)s::text[])

-- name: channel_range
-- A channel's first and last message time.
SELECT min(sent_at), max(sent_at) + interval '1 microsecond' FROM chat.messages
WHERE channel_id = %(channel_id)s

-- name: ask_semantic_exact
-- Exact k-NN over the filtered set: "+ 0" keeps the planner off the HNSW index, which applies
-- the WHERE filter only after its scan and could return fewer than k rows (pgvector < 0.8).
SELECT channel_id, window_start, 1 - (embedding <=> %(q)s::vector) AS similarity
FROM chat.window_embeddings
WHERE model = %(model)s
  AND (%(channel_ids)s::int[] IS NULL OR channel_id = ANY(%(channel_ids)s::int[]))
  AND (%(from)s::timestamptz IS NULL OR window_start >= %(from)s::timestamptz)
  AND (%(to)s::timestamptz IS NULL OR window_start < %(to)s::timestamptz)
ORDER BY (embedding <=> %(q)s::vector) + 0
LIMIT %(k)s

-- name: ask_filtered_windows
-- How many windows the filter leaves, counted up to %(cap)s (the caller picks exact scan or
-- index by it; counting further would cost what the exact scan costs).
SELECT count(*) FROM (
    SELECT 1 FROM chat.window_embeddings
    WHERE model = %(model)s
      AND (%(channel_ids)s::int[] IS NULL OR channel_id = ANY(%(channel_ids)s::int[]))
      AND (%(from)s::timestamptz IS NULL OR window_start >= %(from)s::timestamptz)
      AND (%(to)s::timestamptz IS NULL OR window_start < %(to)s::timestamptz)
    LIMIT %(cap)s
) f

-- name: ask_all_windows
-- The planner's estimate of the rows of chat.window_embeddings (no scan).
SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'chat.window_embeddings'::regclass

-- name: ask_semantic_index
-- Approximate k-NN through the HNSW index: the inner query is unfiltered, so the planner takes
-- the index for it (hnsw.ef_search rows come back); the filter applies to those, as pgvector
-- itself would apply it.  The caller sizes ef_search by the filter's share of the rows and
-- falls back to the exact query when fewer than k rows are left.
SELECT channel_id, window_start, 1 - distance AS similarity
FROM (
    SELECT channel_id, window_start, model, embedding <=> %(q)s::vector AS distance
    FROM chat.window_embeddings
    ORDER BY embedding <=> %(q)s::vector
    LIMIT %(ef)s
) n
WHERE model = %(model)s
  AND (%(channel_ids)s::int[] IS NULL OR channel_id = ANY(%(channel_ids)s::int[]))
  AND (%(from)s::timestamptz IS NULL OR window_start >= %(from)s::timestamptz)
  AND (%(to)s::timestamptz IS NULL OR window_start < %(to)s::timestamptz)
ORDER BY distance
LIMIT %(k)s

-- name: ask_fulltext
-- Windows whose words match the question by full text (their documents, GIN index), best
-- first.  At most %(cap)s matches are ranked: a word found in more windows than that tells
-- little about where chat talked about it, and ranking each costs a read of its document.
SELECT channel_id, window_start, ts_rank(document, q) AS rank
FROM (
    SELECT e.channel_id, e.window_start, e.document, q.q
    FROM chat.window_embeddings e, websearch_to_tsquery('simple', %(q)s) AS q (q)
    WHERE e.document @@ q.q
      AND (%(channel_ids)s::int[] IS NULL OR e.channel_id = ANY(%(channel_ids)s::int[]))
      AND (%(from)s::timestamptz IS NULL OR e.window_start >= %(from)s::timestamptz)
      AND (%(to)s::timestamptz IS NULL OR e.window_start < %(to)s::timestamptz)
    LIMIT %(cap)s
) m
ORDER BY rank DESC, window_start
LIMIT %(k)s

-- name: moment_messages
-- Representative messages of the given windows (one statement for all of ask's moments):
-- per window, those matching the question's words first, then the texts closest in meaning to
-- it, then the most repeated; %(n)s per window.
SELECT w.ord, r.text, r.n
FROM unnest(%(channel_ids)s::int[], %(starts)s::timestamptz[]) WITH ORDINALITY
     AS w (channel_id, window_start, ord)
CROSS JOIN LATERAL (
    SELECT t.text, t.n
    FROM (
        SELECT md5(m.text) AS text_hash, min(m.text) AS text, count(*)::int AS n,
               bool_or(to_tsvector('simple', m.text) @@ websearch_to_tsquery('simple', %(question)s)) AS hit
        FROM chat.messages m
        WHERE m.channel_id = w.channel_id AND m.sent_at >= w.window_start
          AND m.sent_at < w.window_start + interval '30 seconds' AND m.text <> ''
        GROUP BY 1
    ) t
    LEFT JOIN chat.text_embeddings e ON e.model = %(model)s AND e.text_hash = t.text_hash
    ORDER BY t.hit DESC, e.embedding <=> %(q)s::vector, t.n DESC
    LIMIT %(n)s
) r
ORDER BY w.ord

-- name: moment_context
-- Per window (in the order given): the channel's name, the VOD covering the moment (if one is
-- registered) and the start of the stream it belongs to: the analyzed stream (chat.streams)
-- when there is one, else the first minute with chat after 15 minutes of silence (last 2 days).
SELECT w.ord, c.name, v.location, v.start_at,
       coalesce(
           (SELECT s.started_at FROM chat.streams s
            WHERE s.channel_id = w.channel_id AND s.started_at <= w.window_start
              AND s.ended_at >= w.window_start
            ORDER BY s.started_at DESC LIMIT 1),
           (SELECT a.bucket FROM (
                SELECT bucket, lag(bucket) OVER (ORDER BY bucket) AS prev
                FROM chat.activity_1m
                WHERE channel_id = w.channel_id AND bucket <= w.window_start
                  AND bucket > w.window_start - interval '2 days'
            ) a
            WHERE a.prev IS NULL OR a.bucket - a.prev > interval '15 minutes'
            ORDER BY a.bucket DESC LIMIT 1)
       ) AS session_start
FROM unnest(%(channel_ids)s::int[], %(starts)s::timestamptz[]) WITH ORDINALITY
     AS w (channel_id, window_start, ord)
JOIN chat.channels c ON c.id = w.channel_id
LEFT JOIN LATERAL (
    SELECT location, start_at FROM chat.vods
    WHERE channel_id = w.channel_id AND start_at <= w.window_start
      AND (duration_s IS NULL OR start_at + duration_s * interval '1 second' > w.window_start)
    ORDER BY start_at DESC LIMIT 1
) v ON true
ORDER BY w.ord

-- name: emote_names
-- The emote names a channel uses (kept apart from words in topic labels).
SELECT DISTINCT emote_name FROM chat.emote_uses
WHERE channel_id = %(channel_id)s AND sent_at >= %(start)s AND sent_at < %(end)s

-- name: delete_terms
-- Forget a range's distinctive terms before they are computed again.
DELETE FROM chat.window_terms
WHERE channel_id = %(channel_id)s AND window_start >= %(start)s AND window_start < %(end)s

-- name: insert_term
-- One distinctive term of a window.
INSERT INTO chat.window_terms (channel_id, window_start, term, count, zscore, rank)
VALUES (%(channel_id)s, %(start)s, %(term)s, %(count)s, %(z)s, %(rank)s)

-- name: range_window_vectors
-- A channel's window embeddings in a time range.
SELECT window_start, embedding::text FROM chat.window_embeddings
WHERE channel_id = %(channel_id)s AND window_start >= %(start)s AND window_start < %(end)s
  AND model = %(model)s
ORDER BY window_start

-- name: delete_topics
-- Forget a channel's topics before they are computed again.
DELETE FROM chat.topics WHERE channel_id = %(channel_id)s

-- name: insert_topic
-- One topic of a channel, with its top terms and emotes.
INSERT INTO chat.topics
    (channel_id, topic_id, label, terms, emotes, windows, model, range_start, range_end)
VALUES (%(channel_id)s, %(topic_id)s, %(label)s, %(terms)s, %(emotes)s, %(windows)s, %(model)s,
        %(start)s, %(end)s)

-- name: insert_window_topic
-- A window's share of one topic.
INSERT INTO chat.window_topics (channel_id, window_start, topic_id, share)
VALUES (%(channel_id)s, %(start)s, %(topic_id)s, %(share)s)
