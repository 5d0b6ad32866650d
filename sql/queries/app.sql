-- The application layer's own queries: doctor (chatpulse/app/doctor.py), the demo
-- (chatpulse/app/stack.py), forget (chatpulse/app/forget.py) and the topics command
-- (chatpulse/app/commands/topics.py).  Loaded by chatpulse.core.queries.load_queries("app").

-- name: server_version
-- The server's version string.
SHOW server_version;

-- name: schema_migrated
-- Whether chatpulse migrate ever ran here.
SELECT to_regclass('chat.schema_migrations') IS NOT NULL;

-- name: schema_version
-- The newest migration applied and the backend it was applied for.
SELECT coalesce(max(version), 0) AS version,
       (array_agg(backend ORDER BY version DESC))[1] AS backend
FROM chat.schema_migrations;

-- name: timescaledb_status
-- TimescaleDB here: the installed version, the version the server could install, the license.
SELECT (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS installed,
       (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb')
           AS available,
       current_setting('timescaledb.license', true) AS license;

-- name: demo_channel
-- The demo channel's messages: its id, time range, messages, chatters, moderation events.
SELECT c.id, min(m.sent_at) AS first, max(m.sent_at) AS last, count(*) AS messages,
       count(DISTINCT chat.chatter_key(m.user_id, m.user_login, m.user_name)) AS chatters,
       (SELECT count(*) FROM chat.moderation_events e WHERE e.channel_id = c.id) AS moderation
FROM chat.channels c JOIN chat.messages m ON m.channel_id = c.id
WHERE c.name = %(channel)s
GROUP BY c.id
ORDER BY count(*) DESC
LIMIT 1;

-- name: demo_hype_moments
-- A channel's hype moments, highest score first.
SELECT id, started_at, peak_at, ended_at, score, messages_per_min
FROM chat.hype_moments WHERE channel_id = %(channel_id)s
ORDER BY score DESC;

-- name: demo_emote_bursts
-- A channel's emote bursts, highest score first.
SELECT emote_name, started_at, peak_at, ended_at, score
FROM chat.emote_bursts WHERE channel_id = %(channel_id)s
ORDER BY score DESC;

-- name: channel_id
-- The id of a channel by name (no row: unknown).
SELECT id FROM chat.channels WHERE name = %(name)s;

-- name: forget_user_ids
-- Every user id seen with the login (messages, moderation events), on the platform if given.
SELECT m.user_id FROM chat.messages m JOIN chat.channels c ON c.id = m.channel_id
WHERE lower(m.user_login) = %(login)s AND m.user_id IS NOT NULL
  AND (%(platform)s::text IS NULL OR c.platform = %(platform)s)
UNION
SELECT e.target_user_id FROM chat.moderation_events e JOIN chat.channels c ON c.id = e.channel_id
WHERE lower(e.target_login) = %(login)s AND e.target_user_id IS NOT NULL
  AND (%(platform)s::text IS NULL OR c.platform = %(platform)s);

-- name: lock_tombstones
-- Writers read the tombstones under a lock that conflicts with this one (no batch slips past).
LOCK TABLE chat.forgotten_users IN SHARE ROW EXCLUSIVE MODE;

-- name: add_tombstone
-- Forget a login (user_id NULL) or one of its user ids from now on.
INSERT INTO chat.forgotten_users (platform, user_login, user_id)
VALUES (%(platform)s, %(login)s, %(user_id)s)
ON CONFLICT DO NOTHING;

-- name: collect_forget_rows
-- The user's messages (by login or id), kept for the deletes of this transaction.
CREATE TEMP TABLE forget_rows ON COMMIT DROP AS
SELECT m.channel_id, m.message_id, m.sent_at
FROM chat.messages m JOIN chat.channels c ON c.id = m.channel_id
WHERE (lower(m.user_login) = %(login)s OR m.user_id = ANY(%(ids)s))
  AND (%(platform)s::text IS NULL OR c.platform = %(platform)s);

-- name: forget_spans
-- The time ranges of the user's messages and of the moderation events against them (the
-- aggregates are recomputed over them).
SELECT min(sent_at) AS first, max(sent_at) AS last FROM forget_rows
UNION ALL
SELECT min(e.at), max(e.at) FROM chat.moderation_events e
JOIN chat.channels c ON c.id = e.channel_id
WHERE (lower(e.target_login) = %(login)s OR e.target_user_id = ANY(%(ids)s))
  AND (%(platform)s::text IS NULL OR c.platform = %(platform)s);

-- name: count_user_chatters
-- The user's rows in each chatters aggregate.
WITH c AS (SELECT id FROM chat.channels
           WHERE %(platform)s::text IS NULL OR platform = %(platform)s)
SELECT
  (SELECT count(*) FROM chat.chatters_1m m WHERE m.channel_id IN (SELECT id FROM c)
     AND (lower(m.user_login) = %(login)s OR m.user_id = ANY(%(ids)s))) AS chatters_1m,
  (SELECT count(*) FROM chat.chatters_1h m WHERE m.channel_id IN (SELECT id FROM c)
     AND (lower(m.user_login) = %(login)s OR m.user_id = ANY(%(ids)s))) AS chatters_1h,
  (SELECT count(*) FROM chat.chatters_6h m WHERE m.channel_id IN (SELECT id FROM c)
     AND (lower(m.user_login) = %(login)s OR m.user_id = ANY(%(ids)s))) AS chatters_6h,
  (SELECT count(*) FROM chat.chatters_1d m WHERE m.channel_id IN (SELECT id FROM c)
     AND (lower(m.user_login) = %(login)s OR m.user_id = ANY(%(ids)s))) AS chatters_1d;

-- name: forget_message_scores
-- Delete the scores of the user's messages.
DELETE FROM chat.message_scores s USING forget_rows f
WHERE s.channel_id = f.channel_id AND s.message_id = f.message_id AND s.sent_at = f.sent_at;

-- name: forget_scoring_failures
-- Delete the scoring failures of the user's messages.
DELETE FROM chat.scoring_failures s USING forget_rows f
WHERE s.channel_id = f.channel_id AND s.message_id = f.message_id AND s.sent_at = f.sent_at;

-- name: forget_emote_uses
-- Delete the emote uses of the user's messages.
DELETE FROM chat.emote_uses e USING forget_rows f
WHERE e.channel_id = f.channel_id AND e.message_id = f.message_id AND e.sent_at = f.sent_at;

-- name: forget_moderation_events
-- Delete the moderation events against the user.
DELETE FROM chat.moderation_events e USING chat.channels c
WHERE c.id = e.channel_id
  AND (lower(e.target_login) = %(login)s OR e.target_user_id = ANY(%(ids)s))
  AND (%(platform)s::text IS NULL OR c.platform = %(platform)s);

-- name: forget_stream_chatters
-- Delete the user's rows of chat.stream_chatters.
DELETE FROM chat.stream_chatters s USING chat.channels c
WHERE c.id = s.channel_id
  AND (lower(s.login) = %(login)s OR s.chatter = ANY(%(ids)s)
       OR s.chatter = 'login:' || %(login)s)
  AND (%(platform)s::text IS NULL OR c.platform = %(platform)s);

-- name: forget_channel_segments
-- Take the user out of chat.channel_segments' counts (before forget_channel_chatters deletes
-- the rows they count): a count that reaches 0 is deleted, as fill_channel_segments writes none.
WITH n AS (
    SELECT s.channel_id, s.last_stream_at, s.segment, count(*) AS n
    FROM chat.channel_chatters s JOIN chat.channels c ON c.id = s.channel_id
    WHERE (lower(s.login) = %(login)s OR s.chatter = ANY(%(ids)s)
           OR s.chatter = 'login:' || %(login)s)
      AND (%(platform)s::text IS NULL OR c.platform = %(platform)s)
    GROUP BY 1, 2, 3
), fewer AS (
    UPDATE chat.channel_segments g SET chatters = g.chatters - n.n
    FROM n
    WHERE g.channel_id = n.channel_id AND g.last_stream_at = n.last_stream_at
      AND g.segment = n.segment AND g.chatters > n.n
)
DELETE FROM chat.channel_segments g USING n
WHERE g.channel_id = n.channel_id AND g.last_stream_at = n.last_stream_at
  AND g.segment = n.segment AND g.chatters <= n.n;

-- name: forget_channel_chatters
-- Delete the user's row of chat.channel_chatters (behind chat.chatter_segments).
DELETE FROM chat.channel_chatters s USING chat.channels c
WHERE c.id = s.channel_id
  AND (lower(s.login) = %(login)s OR s.chatter = ANY(%(ids)s)
       OR s.chatter = 'login:' || %(login)s)
  AND (%(platform)s::text IS NULL OR c.platform = %(platform)s);

-- name: forget_chatter_cluster_members
-- Delete the user's rows of chat.chatter_cluster_members.
DELETE FROM chat.chatter_cluster_members s USING chat.channels c
WHERE c.id = s.channel_id
  AND (lower(s.login) = %(login)s OR s.chatter = ANY(%(ids)s)
       OR s.chatter = 'login:' || %(login)s)
  AND (%(platform)s::text IS NULL OR c.platform = %(platform)s);

-- name: forget_messages
-- Delete the user's messages (after everything that refers to them).
DELETE FROM chat.messages m USING forget_rows f
WHERE m.channel_id = f.channel_id AND m.message_id = f.message_id AND m.sent_at = f.sent_at;

-- name: forget_samples
-- Take the user's lines out of hype moments' sample messages (the moments stay); returns the
-- number of lines removed.
WITH changed AS (
    UPDATE chat.hype_moments h SET sample_messages = coalesce((
        SELECT jsonb_agg(x ORDER BY n) FROM jsonb_array_elements(h.sample_messages)
            WITH ORDINALITY AS t(x, n)
        WHERE lower(x->>'user') IS DISTINCT FROM %(login)s), '[]'::jsonb)
    FROM chat.channels c
    WHERE c.id = h.channel_id AND (%(platform)s::text IS NULL OR c.platform = %(platform)s)
      AND EXISTS (SELECT 1 FROM jsonb_array_elements(h.sample_messages) x
                  WHERE lower(x->>'user') = %(login)s)
    RETURNING jsonb_array_length(h.sample_messages) AS left_,
              (SELECT jsonb_array_length(o.sample_messages) FROM chat.hype_moments o
               WHERE o.id = h.id) AS before_
)
SELECT coalesce(sum(before_ - left_), 0) FROM changed;
