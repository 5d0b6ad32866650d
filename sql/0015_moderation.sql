-- Moderation against toxicity (issue 17, section 2), both backends: plain views over the raw
-- tables, so they are never stale and need no job.  Two partial indexes keep them cheap: only
-- toxic scores and moderators' messages are read.
--
-- A message is toxic when a model scored it toxicity >= 0.5 (the product's threshold, as in
-- chat.sentiment_1m); with several models the highest score counts, so a message is one row.
-- It is "acted on" by the first moderation event in its channel, at or after it and at most
-- 10 minutes later, that deletes it (a CLEARMSG names it by target_message_id), times out or
-- bans its author (by user id, or by login when the event has no id), or clears the chat.
-- A delete that names the message counts from 5 s before it (the two stamps come from
-- different clocks: a CLEARMSG may be stored at its receive time).
-- "Never acted on": no such event and the 10 minutes are over.

CREATE INDEX message_scores_toxic_idx ON chat.message_scores (channel_id, sent_at)
    WHERE toxicity >= 0.5;
CREATE INDEX messages_mod_idx ON chat.messages (channel_id, sent_at) WHERE is_mod;

CREATE VIEW chat.toxic_messages AS
WITH toxic AS (
    SELECT s.channel_id, s.sent_at, s.message_id, max(s.toxicity) AS toxicity
    FROM chat.message_scores s
    WHERE s.toxicity >= 0.5
    GROUP BY s.channel_id, s.sent_at, s.message_id
)
SELECT t.channel_id, t.sent_at, t.message_id, m.user_id, m.user_login, t.toxicity::float8 AS toxicity,
       a.at AS acted_at, a.kind AS action,
       greatest(extract(epoch FROM a.at - t.sent_at), 0)::float8 AS latency_s,
       (a.at IS NULL AND t.sent_at < now() - INTERVAL '10 minutes') AS never_acted
FROM toxic t
LEFT JOIN chat.messages m
  ON m.channel_id = t.channel_id AND m.message_id = t.message_id AND m.sent_at = t.sent_at
LEFT JOIN LATERAL (
    SELECT e.at, e.kind
    FROM chat.moderation_events e
    WHERE e.channel_id = t.channel_id
      AND e.at >= t.sent_at - INTERVAL '5 seconds'
      AND e.at <= t.sent_at + INTERVAL '10 minutes'
      AND ((e.kind = 'delete' AND e.target_message_id = t.message_id)
           OR (e.at >= t.sent_at AND e.kind = 'clear')
           OR (e.at >= t.sent_at AND e.kind IN ('timeout', 'ban')
               AND (e.target_user_id = m.user_id
                    OR (e.target_user_id IS NULL AND lower(e.target_login) = lower(m.user_login)))))
    ORDER BY e.at
    LIMIT 1
) a ON true;
COMMENT ON VIEW chat.toxic_messages IS
    'Each toxic message (toxicity >= 0.5) with the first moderation action on it or its author within 10 minutes';

CREATE VIEW chat.moderation_1m AS
WITH toxic AS (
    SELECT channel_id, date_trunc('minute', sent_at) AS bucket,
           count(*) AS toxic,
           count(acted_at) AS acted,
           count(*) FILTER (WHERE never_acted) AS never_acted,
           avg(latency_s) AS avg_latency_s,
           max(latency_s) AS max_latency_s
    FROM chat.toxic_messages
    GROUP BY 1, 2
), actions AS (
    SELECT channel_id, date_trunc('minute', at) AS bucket,
           count(*) FILTER (WHERE kind = 'ban') AS bans,
           count(*) FILTER (WHERE kind = 'timeout') AS timeouts,
           count(*) FILTER (WHERE kind = 'delete') AS deletions,
           count(*) FILTER (WHERE kind = 'clear') AS clears
    FROM chat.moderation_events
    GROUP BY 1, 2
), mods AS (
    SELECT channel_id, date_trunc('minute', sent_at) AS bucket,
           count(*) AS mod_messages,
           count(DISTINCT chat.chatter_key(user_id, user_login, user_name)) AS active_mods
    FROM chat.messages
    WHERE is_mod
    GROUP BY 1, 2
), minutes AS (
    SELECT channel_id, bucket FROM toxic
    UNION SELECT channel_id, bucket FROM actions
    UNION SELECT channel_id, bucket FROM mods
    UNION SELECT channel_id, bucket FROM chat.activity_1m
)
SELECT k.bucket, k.channel_id,
       coalesce(a.messages, 0) AS messages,
       coalesce(t.toxic, 0) AS toxic,
       coalesce(t.acted, 0) AS acted,
       coalesce(t.never_acted, 0) AS never_acted,
       t.avg_latency_s, t.max_latency_s,
       coalesce(x.bans, 0) AS bans,
       coalesce(x.timeouts, 0) AS timeouts,
       coalesce(x.deletions, 0) AS deletions,
       coalesce(x.clears, 0) AS clears,
       coalesce(x.bans + x.timeouts + x.deletions + x.clears, 0) AS actions,
       coalesce(md.mod_messages, 0) AS mod_messages,
       coalesce(md.active_mods, 0) AS active_mods
FROM minutes k
LEFT JOIN chat.activity_1m a ON a.channel_id = k.channel_id AND a.bucket = k.bucket
LEFT JOIN toxic t ON t.channel_id = k.channel_id AND t.bucket = k.bucket
LEFT JOIN actions x ON x.channel_id = k.channel_id AND x.bucket = k.bucket
LEFT JOIN mods md ON md.channel_id = k.channel_id AND md.bucket = k.bucket;
COMMENT ON VIEW chat.moderation_1m IS
    'Per channel and minute: toxic messages, how many were acted on (and how fast), actions, moderator messages';

-- A stream is a run of minutes with chat or moderation, broken by 15 minutes of silence (the
-- detector's offline gap).
CREATE VIEW chat.moderation_streams AS
WITH marked AS (
    SELECT m.*,
           CASE WHEN m.bucket - lag(m.bucket) OVER w <= INTERVAL '15 minutes' THEN 0 ELSE 1 END AS starts
    FROM chat.moderation_1m m
    WINDOW w AS (PARTITION BY m.channel_id ORDER BY m.bucket)
), numbered AS (
    SELECT marked.*, sum(starts) OVER (PARTITION BY channel_id ORDER BY bucket) AS stream_no
    FROM marked
)
SELECT channel_id, min(bucket) AS started_at, max(bucket) + INTERVAL '1 minute' AS ended_at,
       sum(messages)::bigint AS messages, sum(toxic)::bigint AS toxic,
       sum(acted)::bigint AS acted, sum(never_acted)::bigint AS never_acted,
       (sum(acted)::float8 / nullif(sum(toxic), 0)) AS acted_share,
       (sum(avg_latency_s * acted) / nullif(sum(acted) FILTER (WHERE avg_latency_s IS NOT NULL), 0))::float8
           AS avg_latency_s,
       sum(bans)::bigint AS bans, sum(timeouts)::bigint AS timeouts,
       sum(deletions)::bigint AS deletions, sum(clears)::bigint AS clears,
       sum(actions)::bigint AS actions, sum(mod_messages)::bigint AS mod_messages,
       max(active_mods) AS peak_active_mods
FROM numbered
GROUP BY channel_id, stream_no;
COMMENT ON VIEW chat.moderation_streams IS
    'Per channel and stream (chat broken by 15 minutes of silence): the moderation_1m figures summed';
