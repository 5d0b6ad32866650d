-- The scoring loop's queries (scorer/loop.py): the per-model cursor in chat.scorer_progress,
-- the claims in chat.scoring_claims, the scores and the failures.  The protocol (settled prefix,
-- claims, adoption under session advisory locks) is described in scorer/loop.py and
-- docs/architecture.md.  Loaded by chatpulse.core.queries.load_queries("scorer").  Parameters
-- are psycopg's %(name)s placeholders.

-- name: add_model
-- Give the model its progress row (cursor at 0) unless it has one.
INSERT INTO chat.scorer_progress (model) VALUES (%(model)s) ON CONFLICT DO NOTHING;

-- name: claim_ids
-- The ids of the model's claims, oldest first (candidates for adoption).
SELECT id FROM chat.scoring_claims WHERE model = %(model)s ORDER BY id;

-- name: try_lock_claim
-- Take a claim's session advisory lock without waiting; false when its owner holds it.
SELECT pg_try_advisory_lock(%(namespace)s, %(key)s);

-- name: lock_claim
-- Take a new claim's session advisory lock (nobody else can see the claim yet).
SELECT pg_advisory_lock(%(namespace)s, %(key)s);

-- name: unlock_claim
-- Release a claim's session advisory lock.
SELECT pg_advisory_unlock(%(namespace)s, %(key)s);

-- name: adopt_claim
-- Take over an abandoned claim (its lock is held); no row when the owner deleted it meanwhile.
UPDATE chat.scoring_claims SET attempts = attempts + 1, worker = %(worker)s, claimed_at = now()
WHERE id = %(id)s
RETURNING id, lo_xid::text AS lo_xid, lo_seq, hi_xid::text AS hi_xid, hi_seq, attempts;

-- name: lock_cursor
-- The model's cursor, locked for this transaction (serialises the model's claimers).
SELECT cursor_xid::text AS xid, cursor_seq AS seq
FROM chat.scorer_progress
WHERE model = %(model)s
FOR UPDATE;

-- name: settled_rows
-- The next settled messages after the cursor: inserted by transactions older than every one
-- still running (ingest_xid below this snapshot's xmin), in (ingest_xid, ingest_seq) order.
SELECT m.ingest_xid::text AS xid, m.ingest_seq AS seq, m.sent_at, m.channel_id, m.message_id,
       m.text, c.name AS channel
FROM chat.messages m JOIN chat.channels c ON c.id = m.channel_id
WHERE (m.ingest_xid, m.ingest_seq) > (%(xid)s::xid8, %(seq)s)
  AND m.ingest_xid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY m.ingest_xid, m.ingest_seq
LIMIT %(limit)s;

-- name: advance_cursor
-- Move the model's cursor to the last claimed message.
UPDATE chat.scorer_progress
SET cursor_xid = %(xid)s::xid8, cursor_seq = %(seq)s, claims = claims + 1, updated_at = now()
WHERE model = %(model)s;

-- name: insert_claim
-- Record a claim on the range (lo, hi] of the cursor order; returns its id.
INSERT INTO chat.scoring_claims (model, lo_xid, lo_seq, hi_xid, hi_seq, messages, worker)
VALUES (%(model)s, %(lo_xid)s::xid8, %(lo_seq)s, %(hi_xid)s::xid8, %(hi_seq)s, %(messages)s,
        %(worker)s)
RETURNING id;

-- name: unscored_rows
-- The messages of an adopted claim's range that have neither a score nor a failure yet.
SELECT m.ingest_xid::text AS xid, m.ingest_seq AS seq, m.sent_at, m.channel_id, m.message_id,
       m.text, c.name AS channel
FROM chat.messages m JOIN chat.channels c ON c.id = m.channel_id
WHERE (m.ingest_xid, m.ingest_seq) > (%(lo_xid)s::xid8, %(lo_seq)s)
  AND (m.ingest_xid, m.ingest_seq) <= (%(hi_xid)s::xid8, %(hi_seq)s)
  AND NOT EXISTS (SELECT 1 FROM chat.message_scores s
                  WHERE s.channel_id = m.channel_id AND s.message_id = m.message_id
                    AND s.sent_at = m.sent_at AND s.model = %(model)s)
  AND NOT EXISTS (SELECT 1 FROM chat.scoring_failures f
                  WHERE f.channel_id = m.channel_id AND f.message_id = m.message_id
                    AND f.sent_at = m.sent_at AND f.model = %(model)s)
ORDER BY m.ingest_xid, m.ingest_seq;

-- name: insert_scores
-- Write a batch of scores (one array per column; the emotion columns are
-- chatpulse.core.contract.EMOTIONS); a score that exists already is left alone.
INSERT INTO chat.message_scores (sent_at, channel_id, message_id, model, sentiment, label,
                                 p_negative, p_neutral, p_positive, anger, anticipation,
                                 disgust, fear, joy, love, optimism, pessimism, sadness,
                                 surprise, trust, toxicity)
SELECT u.sent_at, u.channel_id, u.message_id, %(model)s, u.sentiment, u.label, u.p_negative,
       u.p_neutral, u.p_positive, u.anger, u.anticipation, u.disgust, u.fear, u.joy, u.love,
       u.optimism, u.pessimism, u.sadness, u.surprise, u.trust, u.toxicity
FROM unnest(%(sent_at)s::timestamptz[], %(channel_id)s::integer[], %(message_id)s::text[],
            %(sentiment)s::real[], %(label)s::text[], %(p_negative)s::real[],
            %(p_neutral)s::real[], %(p_positive)s::real[], %(anger)s::real[],
            %(anticipation)s::real[], %(disgust)s::real[], %(fear)s::real[], %(joy)s::real[],
            %(love)s::real[], %(optimism)s::real[], %(pessimism)s::real[],
            %(sadness)s::real[], %(surprise)s::real[], %(trust)s::real[],
            %(toxicity)s::real[])
     AS u(sent_at, channel_id, message_id, sentiment, label, p_negative, p_neutral, p_positive,
          anger, anticipation, disgust, fear, joy, love, optimism, pessimism, sadness,
          surprise, trust, toxicity)
ON CONFLICT (channel_id, message_id, sent_at, model) DO NOTHING;

-- name: insert_failure
-- Record a message that could not be scored, with its reason; an existing record stays.
INSERT INTO chat.scoring_failures (sent_at, channel_id, message_id, model, reason, detail)
VALUES (%(sent_at)s, %(channel_id)s, %(message_id)s, %(model)s, %(reason)s, %(detail)s)
ON CONFLICT (channel_id, message_id, sent_at, model) DO NOTHING;

-- name: delete_claim
-- Delete a finished claim (before its lock is released).
DELETE FROM chat.scoring_claims WHERE id = %(id)s;

-- name: try_refresh_lock
-- The transaction lock chat.refresh_aggregates() takes, without waiting; false when busy.
SELECT pg_try_advisory_xact_lock(hashtextextended('chatpulse.refresh_aggregates', 0));

-- name: backlog_visible
-- Whether committed messages lie after the model's cursor (settled or not yet).
SELECT EXISTS (SELECT 1 FROM chat.messages m, chat.scorer_progress p
               WHERE p.model = %(model)s
                 AND (m.ingest_xid, m.ingest_seq) > (p.cursor_xid, p.cursor_seq));

-- name: lag
-- Seconds since the oldest message still waiting for the model was received (the first after
-- its cursor, or the first of an unfinished claim, whichever is older; NULL when nothing
-- waits), and the model's claims.  Two index probes on (ingest_xid, ingest_seq) per claim.
WITH p AS (
    SELECT coalesce((SELECT cursor_xid FROM chat.scorer_progress WHERE model = %(model)s),
                    '0'::xid8) AS cx,
           coalesce((SELECT cursor_seq FROM chat.scorer_progress WHERE model = %(model)s),
                    0) AS cs
), waiting AS (
    SELECT (SELECT m.received_at FROM chat.messages m
            WHERE (m.ingest_xid, m.ingest_seq) > (p.cx, p.cs)
            ORDER BY m.ingest_xid, m.ingest_seq LIMIT 1) AS received_at
    FROM p
    UNION ALL
    SELECT (SELECT m.received_at FROM chat.messages m
            WHERE (m.ingest_xid, m.ingest_seq) > (c.lo_xid, c.lo_seq)
            ORDER BY m.ingest_xid, m.ingest_seq LIMIT 1)
    FROM chat.scoring_claims c WHERE c.model = %(model)s
)
SELECT extract(epoch FROM now() - min(received_at))::float8 AS lag_s,
       (SELECT count(*) FROM chat.scoring_claims WHERE model = %(model)s) AS claims
FROM waiting;
