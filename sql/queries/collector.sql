-- The collector's queries: the batch writer (staging, ON CONFLICT inserts, gap bookkeeping),
-- the channel registry, the forgotten users, the emote rematch and the replay's lookups.
-- Loaded by chatpulse.core.queries.load_queries("collector"); collector/writer/,
-- collector/forgotten.py, collector/rematch.py, collector/wiring.py and collector/replay.py
-- run them.  Each statement is named by a "-- name:" line followed by a one-line comment.
-- Parameters are psycopg's %(name)s placeholders; a literal percent sign is written %%.

-- name: set_channel_platform_id
-- Give a known channel its platform (room) id, unless it has one.
UPDATE chat.channels SET platform_id = %(platform_id)s
WHERE id = %(id)s AND platform_id IS NULL;

-- name: upsert_channel
-- Create a channel on first sight (executemany); a platform id fills an empty one.
INSERT INTO chat.channels (platform, name, platform_id)
VALUES (%(platform)s, %(name)s, %(platform_id)s)
ON CONFLICT (platform, name) DO UPDATE
    SET platform_id = coalesce(chat.channels.platform_id, EXCLUDED.platform_id)
    WHERE chat.channels.platform_id IS NULL AND EXCLUDED.platform_id IS NOT NULL;

-- name: channel_ids
-- The id and platform id of each (platform, name) pair given as two parallel arrays.
SELECT platform, name, id, platform_id
FROM chat.channels
WHERE (platform, name) IN (SELECT * FROM unnest(%(platforms)s::text[], %(names)s::text[]));

-- name: channel_by_name
-- One channel's id and platform id by platform and name (none when unknown).
SELECT id, platform_id FROM chat.channels WHERE platform = %(platform)s AND name = %(name)s;

-- name: create_staging_messages
-- The writer's per-connection staging table for messages, emptied at each commit.
CREATE TEMP TABLE IF NOT EXISTS staging_messages (
    sent_at timestamptz, channel_id integer, message_id text, user_id text, user_login text,
    user_name text, text text, kind text, badges jsonb, is_mod boolean, is_subscriber boolean,
    is_first boolean, bits integer, reply_parent_id text, emote_count integer, extra jsonb,
    received_at timestamptz, source text
) ON COMMIT DELETE ROWS;

-- name: create_staging_emotes
-- The writer's per-connection staging table for emote uses, emptied at each commit.
CREATE TEMP TABLE IF NOT EXISTS staging_emotes (
    sent_at timestamptz, channel_id integer, message_id text, emote_id text, emote_name text,
    provider text, count integer, user_id text
) ON COMMIT DELETE ROWS;

-- name: copy_staging_messages
-- Bulk-load one batch's messages into the staging table (COPY, rows in this column order).
COPY staging_messages (sent_at, channel_id, message_id, user_id, user_login, user_name, text,
                       kind, badges, is_mod, is_subscriber, is_first, bits, reply_parent_id,
                       emote_count, extra, received_at, source)
FROM STDIN;

-- name: insert_messages
-- Move the staged messages into chat.messages once each; rows inserted per channel and source.
WITH ins AS (
    INSERT INTO chat.messages (sent_at, channel_id, message_id, user_id, user_login, user_name,
                               text, kind, badges, is_mod, is_subscriber, is_first, bits,
                               reply_parent_id, emote_count, extra, received_at, source)
    SELECT sent_at, channel_id, message_id, user_id, user_login, user_name, text, kind, badges,
           is_mod, is_subscriber, is_first, bits, reply_parent_id, emote_count, extra,
           received_at, source
    FROM staging_messages
    ORDER BY sent_at
    ON CONFLICT DO NOTHING
    RETURNING channel_id, source
)
SELECT channel_id, source, count(*) AS inserted FROM ins GROUP BY 1, 2;

-- name: copy_staging_emotes
-- Bulk-load one batch's emote uses into the staging table (COPY, rows in this column order).
COPY staging_emotes (sent_at, channel_id, message_id, emote_id, emote_name, provider, count,
                     user_id)
FROM STDIN;

-- name: insert_emote_uses
-- Every message of the batch was new: its staged emote uses are all new too.
INSERT INTO chat.emote_uses (sent_at, channel_id, message_id, emote_id, emote_name, provider,
                             count, user_id)
SELECT sent_at, channel_id, message_id, emote_id, emote_name, provider, count, user_id
FROM staging_emotes
ON CONFLICT DO NOTHING;

-- name: backfill_emote_uses
-- Some messages were stored before: add the emote uses found only now, grow their emote_count.
-- A replay again, gap fill or the spool: emotes found now that were not then (the channel's
-- sets became known) are added to those messages, and their emote_count grows by as much, so
-- it always equals their chat.emote_uses.  A name the message already counts (under another
-- provider, when the sets changed) is not counted twice.  Messages inserted by this very
-- transaction already count their uses.
WITH ins AS (
    INSERT INTO chat.emote_uses (sent_at, channel_id, message_id, emote_id, emote_name,
                                 provider, count, user_id)
    SELECT sent_at, channel_id, message_id, emote_id, emote_name, provider, count, user_id
    FROM staging_emotes s
    WHERE NOT EXISTS (
        SELECT 1 FROM chat.emote_uses u
        WHERE u.channel_id = s.channel_id AND u.message_id = s.message_id
          AND u.sent_at = s.sent_at AND u.emote_name = s.emote_name)
    ON CONFLICT DO NOTHING
    RETURNING channel_id, message_id, sent_at, count
), per AS (
    SELECT channel_id, message_id, sent_at, sum(count) AS n FROM ins GROUP BY 1, 2, 3
), upd AS (
    UPDATE chat.messages m SET emote_count = m.emote_count + per.n
    FROM per
    WHERE m.channel_id = per.channel_id AND m.message_id = per.message_id
      AND m.sent_at = per.sent_at AND m.ingest_xid <> pg_current_xact_id()
    RETURNING per.n
)
SELECT (SELECT count(*) FROM ins) AS rows_added,
       (SELECT coalesce(sum(n), 0) FROM upd) AS uses_backfilled;

-- name: insert_moderation_event
-- Store one moderation event once (its event_key decides).
INSERT INTO chat.moderation_events (at, channel_id, kind, target_user_id, target_login,
                                    target_message_id, duration_s, event_key, received_at,
                                    source, extra)
VALUES (%(at)s, %(channel_id)s, %(kind)s, %(target_user_id)s, %(target_login)s,
        %(target_message_id)s, %(duration_s)s, %(event_key)s, %(received_at)s, %(source)s,
        %(extra)s)
ON CONFLICT DO NOTHING;

-- name: open_restart_gap
-- A collector restart: a gap from the channel's newest live message written before this run.
-- No such message (a new channel): no row.
INSERT INTO chat.gaps (channel_id, started_at, reason, collector, gap_key)
SELECT %(channel)s, max(sent_at), %(reason)s, %(collector)s, %(key)s
FROM chat.messages
WHERE channel_id = %(channel)s AND source <> 'replay' AND received_at < %(before)s
HAVING max(sent_at) IS NOT NULL
ON CONFLICT (gap_key) DO NOTHING;

-- name: open_gap
-- A lost connection: a gap that starts at the loss (once per gap key).
INSERT INTO chat.gaps (channel_id, started_at, reason, collector, gap_key)
VALUES (%(channel)s, %(at)s, %(reason)s, %(collector)s, %(key)s)
ON CONFLICT (gap_key) DO NOTHING;

-- name: close_gap
-- The connection is back: the gap ends (once).
UPDATE chat.gaps SET ended_at = %(at)s WHERE gap_key = %(key)s AND ended_at IS NULL;

-- name: fill_gap
-- Gap fill is written: how many rows it brought back that we did not have.
UPDATE chat.gaps SET filled_at = now(), recovered = %(recovered)s WHERE gap_key = %(key)s;

-- name: lock_forgotten_users
-- Hold the tombstones still until the batch's transaction ends (chatpulse forget waits).
LOCK TABLE chat.forgotten_users IN SHARE MODE;

-- name: forgotten_users
-- Every tombstone chatpulse forget left.
SELECT platform, user_login, user_id FROM chat.forgotten_users;

-- name: rematch_create_staging
-- The rematch's per-connection staging table for emote uses, emptied at each commit.
CREATE TEMP TABLE IF NOT EXISTS rematch_uses (
    sent_at timestamptz, channel_id integer, message_id text, emote_id text, emote_name text,
    provider text, count integer, user_id text
) ON COMMIT DELETE ROWS;

-- name: rematch_chunk
-- The next chunk of a channel's stored messages after a (sent_at, message_id), with their uses.
SELECT m.sent_at, m.message_id, m.text, m.user_id,
       coalesce(u.names, '{}') AS names, coalesce(u.ids, '{}') AS ids,
       coalesce(u.providers, '{}') AS providers, coalesce(u.counts, '{}') AS counts
FROM chat.messages m
LEFT JOIN LATERAL (
    SELECT array_agg(e.emote_name) AS names, array_agg(e.emote_id) AS ids,
           array_agg(e.provider) AS providers, array_agg(e.count) AS counts
    FROM chat.emote_uses e
    WHERE e.channel_id = m.channel_id AND e.message_id = m.message_id AND e.sent_at = m.sent_at
) u ON true
WHERE m.channel_id = %(c)s AND m.sent_at >= %(lo)s::timestamptz AND m.sent_at < %(hi)s::timestamptz
  AND m.sent_at >= %(after_t)s::timestamptz
  AND (m.sent_at, m.message_id) > (%(after_t)s::timestamptz, %(after_id)s::text)
ORDER BY m.sent_at, m.message_id
LIMIT %(n)s;

-- name: rematch_copy_staging
-- Bulk-load the emote uses a rematch chunk found (COPY, rows in this column order).
COPY rematch_uses (sent_at, channel_id, message_id, emote_id, emote_name, provider, count,
                   user_id)
FROM STDIN;

-- name: rematch_insert_uses
-- Add the staged uses a message does not count yet (by name); rows and uses added.
WITH ins AS (
    INSERT INTO chat.emote_uses
        (sent_at, channel_id, message_id, emote_id, emote_name, provider, count, user_id)
    SELECT sent_at, channel_id, message_id, emote_id, emote_name, provider, count, user_id
    FROM rematch_uses s
    WHERE NOT EXISTS (
        SELECT 1 FROM chat.emote_uses u
        WHERE u.channel_id = s.channel_id AND u.message_id = s.message_id
          AND u.sent_at = s.sent_at AND u.emote_name = s.emote_name)
    ON CONFLICT DO NOTHING
    RETURNING count
)
SELECT count(*) AS rows_added, coalesce(sum(count), 0) AS uses_added FROM ins;

-- name: rematch_reconcile
-- Set emote_count to the sum of the uses for every message of the span where it differs.
WITH t AS (
    SELECT m.message_id, m.sent_at, coalesce(sum(e.count), 0) AS total
    FROM chat.messages m
    LEFT JOIN chat.emote_uses e
           ON e.channel_id = m.channel_id AND e.message_id = m.message_id
          AND e.sent_at = m.sent_at
    WHERE m.channel_id = %(c)s AND m.sent_at >= %(a)s AND m.sent_at <= %(b)s
    GROUP BY m.message_id, m.sent_at, m.emote_count
    HAVING coalesce(sum(e.count), 0) <> m.emote_count
)
UPDATE chat.messages m SET emote_count = t.total
FROM t
WHERE m.channel_id = %(c)s AND m.message_id = t.message_id AND m.sent_at = t.sent_at
RETURNING m.sent_at;

-- name: channel_overlaps
-- Does chat.messages hold any message of the channel sent within [since, until]?
-- Asked with constants, one channel at a time: the planner then sees how few rows lie in
-- the range (an index probe for chat that is appended); a correlated form got a seq scan.
SELECT EXISTS (SELECT 1 FROM chat.messages
               WHERE channel_id = %(channel_id)s AND sent_at >= %(since)s
                 AND sent_at <= %(until)s) AS overlaps;

-- name: stored_messages
-- Which of a batch's message keys (three parallel arrays) chat.messages holds already.
-- One probe of the unique key per message: the LIMIT keeps the planner from joining the
-- whole table (a merge join over chat.messages would make each batch cost the table's size).
SELECT k.channel_id, k.message_id, k.sent_at
FROM unnest(%(channel_ids)s::integer[], %(message_ids)s::text[], %(sent_ats)s::timestamptz[])
     AS k(channel_id, message_id, sent_at)
CROSS JOIN LATERAL (
    SELECT 1 FROM chat.messages m
    WHERE m.channel_id = k.channel_id AND m.message_id = k.message_id AND m.sent_at = k.sent_at
    LIMIT 1
) AS found;

-- name: copy_messages
-- Bulk-load messages known to be new straight into chat.messages (the unique key still rules).
COPY chat.messages (sent_at, channel_id, message_id, user_id, user_login, user_name, text, kind,
                    badges, is_mod, is_subscriber, is_first, bits, reply_parent_id, emote_count,
                    extra, received_at, source)
FROM STDIN;

-- name: copy_emote_uses
-- Bulk-load the emote uses of messages known to be new straight into chat.emote_uses.
COPY chat.emote_uses (sent_at, channel_id, message_id, emote_id, emote_name, provider, count,
                      user_id)
FROM STDIN;
