-- The clipper's queries: the clip queue in chat.clips and the VOD registry in chat.vods.
-- Loaded by chatpulse.core.queries.load_queries("clipper"); clipper/jobs.py runs them.
-- Each statement is named by a "-- name:" line followed by a one-line comment.  Parameters
-- are psycopg's %(name)s placeholders; a literal percent sign is written %%.

-- name: enqueue_clip
-- Queue one clip unless its dedup_key exists; returns the new row (none on conflict).
INSERT INTO chat.clips (dedup_key, channel, channel_id, trigger, start_at, end_at, not_before,
                        hype_moment_id, request, reencode)
VALUES (%(dedup_key)s, %(channel)s,
        (SELECT id FROM chat.channels WHERE name = %(channel)s ORDER BY id LIMIT 1),
        %(trigger)s, %(start_at)s, %(end_at)s, %(end_at)s, %(hype_moment_id)s, %(request)s,
        %(reencode)s)
ON CONFLICT (dedup_key) DO NOTHING
RETURNING id, dedup_key, channel, channel_id, requested_at, trigger, start_at, end_at, status,
          attempts, location, thumbnail, duration_s, error, finished_at, not_before,
          heartbeat_at, worker, hype_moment_id, reencode, media, request;

-- name: enqueue_alert_clips
-- One statement per webhook delivery: hype-moment lookup, window, insert, and the existing rows.
-- A delivery under a burst of alerts used to make four round trips per alert (BEGIN, lookup,
-- insert, COMMIT); each waited its turn on the API's busy event loop.  peak_at is written as
-- Python's isoformat with Z writes it (the worker and clients read it back with
-- datetime.fromisoformat).  "created" says whether this statement inserted the row.
WITH a AS (
    SELECT * FROM unnest(%(keys)s::text[], %(channels)s::text[], %(starts)s::timestamptz[],
                         %(requests)s::jsonb[])
        WITH ORDINALITY AS a(dedup_key, channel, starts_at, request, ord)
), p AS (
    SELECT a.*, h.id AS hype_id, coalesce(h.peak_at, a.starts_at) AS peak
    FROM a LEFT JOIN LATERAL (
        SELECT h.id, h.peak_at
        FROM chat.hype_moments h JOIN chat.channels c ON c.id = h.channel_id
        WHERE c.name = a.channel AND h.peak_at <= a.starts_at
          AND h.peak_at >= a.starts_at - make_interval(secs => %(lookback)s)
        ORDER BY h.peak_at DESC, h.id DESC
        LIMIT 1) h ON true
), w AS (
    SELECT p.*, p.peak AT TIME ZONE 'UTC' AS peak_utc,
           p.peak - make_interval(secs => %(pre)s) AS start_at,
           p.peak + make_interval(secs => %(post)s) AS end_at
    FROM p
), ins AS (
    INSERT INTO chat.clips (dedup_key, channel, channel_id, trigger, start_at, end_at,
                            not_before, hype_moment_id, request, reencode)
    SELECT w.dedup_key, w.channel,
           (SELECT id FROM chat.channels WHERE name = w.channel ORDER BY id LIMIT 1),
           'alert', w.start_at, w.end_at, w.end_at, w.hype_id,
           w.request || jsonb_build_object(
               'peak_at',
               to_char(w.peak_utc, 'YYYY-MM-DD"T"HH24:MI:SS')
               || CASE WHEN extract(microseconds FROM w.peak_utc)::bigint %% 1000000 = 0
                       THEN '' ELSE to_char(w.peak_utc, '.US') END
               || 'Z'),
           %(reencode)s
    FROM w ORDER BY w.ord
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING id, dedup_key, channel, channel_id, requested_at, trigger, start_at, end_at,
              status, attempts, location, thumbnail, duration_s, error, finished_at, not_before,
              heartbeat_at, worker, hype_moment_id, reencode, media, request
)
SELECT id, dedup_key, channel, channel_id, requested_at, trigger, start_at, end_at, status,
       attempts, location, thumbnail, duration_s, error, finished_at, not_before, heartbeat_at,
       worker, hype_moment_id, reencode, media, request, true AS created
FROM ins
UNION ALL
SELECT id, dedup_key, channel, channel_id, requested_at, trigger, start_at, end_at, status,
       attempts, location, thumbnail, duration_s, error, finished_at, not_before, heartbeat_at,
       worker, hype_moment_id, reencode, media, request, false AS created
FROM chat.clips
WHERE dedup_key = ANY(%(keys)s::text[]) AND dedup_key NOT IN (SELECT dedup_key FROM ins);

-- name: clips_by_keys
-- Existing clips by dedup_key (committed after an enqueue statement's snapshot was taken).
SELECT id, dedup_key, channel, channel_id, requested_at, trigger, start_at, end_at, status,
       attempts, location, thumbnail, duration_s, error, finished_at, not_before, heartbeat_at,
       worker, hype_moment_id, reencode, media, request, false AS created
FROM chat.clips
WHERE dedup_key = ANY(%(keys)s::text[]);

-- name: claim_job
-- Claim one due job, or one whose worker stopped heartbeating; error keeps who lost it.
UPDATE chat.clips
SET status = 'running', attempts = attempts + 1, heartbeat_at = now(), worker = %(worker)s,
    error = CASE WHEN status = 'running' THEN 'stalled on worker ' || coalesce(worker, '?')
                 ELSE error END
WHERE id = (
    SELECT id FROM chat.clips
    WHERE (status = 'queued' AND not_before <= now())
       OR (status = 'running' AND heartbeat_at < now() - make_interval(secs => %(stall)s))
    ORDER BY not_before, id
    FOR UPDATE SKIP LOCKED
    LIMIT 1)
RETURNING id, dedup_key, channel, channel_id, requested_at, trigger, start_at, end_at, status,
          attempts, location, thumbnail, duration_s, error, finished_at, not_before,
          heartbeat_at, worker, hype_moment_id, reencode, media, request;

-- name: heartbeat
-- Refresh a running job's heartbeat; touches no row when the worker no longer holds it.
UPDATE chat.clips SET heartbeat_at = now()
WHERE id = %(id)s AND worker = %(worker)s AND status = 'running';

-- name: finish_job
-- Mark a running job done with its clip; touches no row when the worker lost the job.
UPDATE chat.clips
SET status = 'done', location = %(location)s, thumbnail = %(thumbnail)s,
    duration_s = %(duration_s)s, media = %(media)s, error = NULL, finished_at = now(),
    heartbeat_at = now()
WHERE id = %(id)s AND worker = %(worker)s AND status = 'running';

-- name: fail_job
-- Record a failed attempt: queued again after delay seconds, or failed for good when final.
UPDATE chat.clips
SET status = CASE WHEN %(final)s THEN 'failed' ELSE 'queued' END,
    error = %(error)s,
    not_before = now() + make_interval(secs => %(delay)s),
    finished_at = CASE WHEN %(final)s THEN now() END,
    heartbeat_at = NULL
WHERE id = %(id)s AND worker = %(worker)s AND status = 'running';

-- name: release_job
-- Put a job back without using an attempt: not its fault (media not recorded yet, shutdown).
UPDATE chat.clips
SET status = 'queued', attempts = greatest(attempts - 1, 0), error = %(error)s,
    not_before = now() + make_interval(secs => %(delay)s), heartbeat_at = NULL
WHERE id = %(id)s AND worker = %(worker)s AND status = 'running';

-- name: latest_hype_moment
-- The channel's latest hype moment peaking at or before a time, within a lookback.
SELECT h.id, h.peak_at
FROM chat.hype_moments h JOIN chat.channels c ON c.id = h.channel_id
WHERE c.name = %(channel)s AND h.peak_at <= %(at)s
  AND h.peak_at >= %(at)s - make_interval(secs => %(lookback)s)
ORDER BY h.peak_at DESC, h.id DESC
LIMIT 1;

-- name: get_clip
-- One clip by id.
SELECT id, dedup_key, channel, channel_id, requested_at, trigger, start_at, end_at, status,
       attempts, location, thumbnail, duration_s, error, finished_at, not_before, heartbeat_at,
       worker, hype_moment_id, reencode, media, request
FROM chat.clips
WHERE id = %(id)s;

-- name: get_clip_by_key
-- One clip by dedup_key.
SELECT id, dedup_key, channel, channel_id, requested_at, trigger, start_at, end_at, status,
       attempts, location, thumbnail, duration_s, error, finished_at, not_before, heartbeat_at,
       worker, hype_moment_id, reencode, media, request
FROM chat.clips
WHERE dedup_key = %(dedup_key)s;

-- name: list_clips
-- Clips newest first, optionally of one channel and/or status; before pages by id.
SELECT id, dedup_key, channel, channel_id, requested_at, trigger, start_at, end_at, status,
       attempts, location, thumbnail, duration_s, error, finished_at, not_before, heartbeat_at,
       worker, hype_moment_id, reencode, media, request
FROM chat.clips
WHERE (%(channel)s::text IS NULL OR channel = %(channel)s)
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(before)s::bigint IS NULL OR id < %(before)s)
ORDER BY id DESC LIMIT %(limit)s;

-- name: clips_per_status
-- How many clips are in each status (for the metrics).
SELECT status, count(*) AS clips FROM chat.clips GROUP BY status;

-- name: jobs_due
-- How many queued jobs are due now (for the metrics).
SELECT count(*) AS jobs FROM chat.clips WHERE status = 'queued' AND not_before <= now();

-- name: ping
-- Whether the database answers (the API's health check).
SELECT 1;

-- name: jobs_pending
-- How many jobs are queued or running, due or not (a worker run until idle stops at 0).
SELECT count(*) AS jobs FROM chat.clips WHERE status IN ('queued', 'running');

-- name: upsert_channel
-- The id of a channel row, created when missing.
INSERT INTO chat.channels (platform, name) VALUES (%(platform)s, %(name)s)
ON CONFLICT (platform, name) DO UPDATE SET name = EXCLUDED.name
RETURNING id;

-- name: upsert_vod
-- Register a VOD of a channel, or update its start and duration; returns its id.
INSERT INTO chat.vods (channel_id, location, start_at, duration_s)
VALUES (%(channel_id)s, %(location)s, %(start_at)s, %(duration_s)s)
ON CONFLICT (channel_id, location) DO UPDATE
SET start_at = EXCLUDED.start_at, duration_s = EXCLUDED.duration_s
RETURNING id;

-- name: find_vod
-- The newest VOD of a channel that overlaps [start, end).
SELECT v.location, v.start_at, v.duration_s
FROM chat.vods v JOIN chat.channels c ON c.id = v.channel_id
WHERE c.name = %(channel)s AND v.start_at <= %(end)s
  AND (v.duration_s IS NULL OR v.start_at + make_interval(secs => v.duration_s) > %(start)s)
ORDER BY v.start_at DESC
LIMIT 1;
