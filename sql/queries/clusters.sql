-- Named queries of the behavioural clustering (analytics/clusters.py), loaded with
-- chatpulse.core.queries.load_queries("clusters").  Parameters are psycopg's %(name)s.

-- name: channels
-- Every channel with analyzed streams.
SELECT DISTINCT channel_id FROM chat.streams ORDER BY 1;

-- name: stream_starts
-- A channel's stream starts, oldest first (for each chatter's attendance).
SELECT started_at FROM chat.streams WHERE channel_id = %(channel)s ORDER BY started_at;

-- name: chatter_features
-- Per chatter of the channel, summed over the streams they wrote in.
SELECT sc.chatter, max(sc.login) AS login, count(*) AS streams, min(sc.started_at) AS first_at,
       sum(sc.messages) AS messages, sum(sc.duplicates) AS duplicates,
       sum(sc.emote_uses) AS emote_uses, sum(sc.chars) AS chars,
       sum(sc.gap_mean_s * sc.gaps) FILTER (WHERE sc.gap_mean_s IS NOT NULL)
         / nullif(sum(sc.gaps) FILTER (WHERE sc.gap_mean_s IS NOT NULL), 0) AS gap_mean_s
FROM chat.stream_chatters sc
WHERE sc.channel_id = %(channel)s
GROUP BY sc.chatter
ORDER BY sc.chatter;

-- name: delete_clusters
-- Drop a channel's clusters (members go with them).
DELETE FROM chat.chatter_clusters WHERE channel_id = %(channel)s;

-- name: insert_cluster
-- One cluster's description.
INSERT INTO chat.chatter_clusters (channel_id, cluster, chatters, k, silhouette, description,
    messages, messages_per_stream, streams, attendance, emote_share, duplicate_share,
    avg_length, gap_mean_s)
VALUES (%(channel)s, %(cluster)s, %(chatters)s, %(k)s, %(silhouette)s, %(description)s,
    %(messages)s, %(messages_per_stream)s, %(streams)s, %(attendance)s, %(emote_share)s,
    %(duplicate_share)s, %(avg_length)s, %(gap_mean_s)s);

-- name: insert_member
-- One chatter's cluster.
INSERT INTO chat.chatter_cluster_members (channel_id, chatter, login, cluster)
VALUES (%(channel)s, %(chatter)s, %(login)s, %(cluster)s);
