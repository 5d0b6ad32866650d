-- Behavioural clusters of chatters (issue 15), both backends: written by `chatpulse analyze`
-- when scikit-learn is installed (pip install 'chatpulse[analytics]'), or with --cluster.
-- Per channel, every chatter of its streams is described by features of their behaviour
-- (analytics/clusters.py), the features are standardised and KMeans runs for each k of a small
-- range; the k with the best silhouette wins.  A channel's rows are replaced at each run.
-- Names here are a public API (README, SQL contract).

-- One row per channel and cluster: its size and the mean of each feature over its chatters.
CREATE TABLE chat.chatter_clusters (
    channel_id           integer     NOT NULL REFERENCES chat.channels (id),
    cluster              smallint    NOT NULL,
    chatters             integer     NOT NULL,
    k                    smallint    NOT NULL,
    silhouette           real        NOT NULL,
    description          text        NOT NULL,
    messages             real        NOT NULL,
    messages_per_stream  real        NOT NULL,
    streams              real        NOT NULL,
    attendance           real        NOT NULL,
    emote_share          real        NOT NULL,
    duplicate_share      real        NOT NULL,
    avg_length           real        NOT NULL,
    gap_mean_s           real,
    computed_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT chatter_clusters_key PRIMARY KEY (channel_id, cluster)
);
COMMENT ON TABLE chat.chatter_clusters IS 'Behavioural clusters of a channel''s chatters (KMeans on standardised features; chatpulse analyze with scikit-learn).';
COMMENT ON COLUMN chat.chatter_clusters.description IS 'the features furthest from the channel''s average, in standard deviations';
COMMENT ON COLUMN chat.chatter_clusters.attendance IS 'share of the channel''s streams since the chatter''s first that they wrote in';

-- Which cluster each chatter (chat.chatter_key) is in.
CREATE TABLE chat.chatter_cluster_members (
    channel_id  integer  NOT NULL,
    chatter     text     NOT NULL,
    login       text,
    cluster     smallint NOT NULL,
    CONSTRAINT chatter_cluster_members_key PRIMARY KEY (channel_id, chatter),
    CONSTRAINT chatter_cluster_members_cluster_fkey FOREIGN KEY (channel_id, cluster)
        REFERENCES chat.chatter_clusters (channel_id, cluster) ON DELETE CASCADE
);
CREATE INDEX chatter_cluster_members_cluster_idx ON chat.chatter_cluster_members (channel_id, cluster);
