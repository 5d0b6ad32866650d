-- Topics and ask-the-chat (both backends).  Windows are 30 s per channel, aligned to the epoch
-- (date_bin('30 seconds', sent_at, '2000-01-01')).
--
-- Always created (no extension needed): distinctive terms per window and the topic tables.
-- Created only where the pgvector extension is available (the embedded pgserver, the
-- timescaledb-ha image): chat.text_embeddings and chat.window_embeddings, by
-- chat.enable_vectors(), which this migration calls and `chatpulse embed` calls again (so a
-- server that gains pgvector later gets them without a new migration).

CREATE TABLE chat.window_terms (
    channel_id    integer     NOT NULL REFERENCES chat.channels (id),
    window_start  timestamptz NOT NULL,
    term          text        NOT NULL,
    count         integer     NOT NULL,
    zscore        real        NOT NULL,
    rank          smallint    NOT NULL,
    computed_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT window_terms_key PRIMARY KEY (channel_id, window_start, term)
);
COMMENT ON TABLE chat.window_terms IS
    'Distinctive terms of a 30-s window against the channel''s chat of the analysed range: log-odds with an informative Dirichlet prior (Monroe et al. 2008), z-score; top terms only.';

CREATE TABLE chat.topics (
    channel_id    integer     NOT NULL REFERENCES chat.channels (id),
    topic_id      integer     NOT NULL,
    label         text        NOT NULL,
    terms         text[]      NOT NULL,
    emotes        text[]      NOT NULL DEFAULT '{}',
    windows       integer     NOT NULL,
    model         text        NOT NULL,
    range_start   timestamptz NOT NULL,
    range_end     timestamptz NOT NULL,
    computed_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT topics_key PRIMARY KEY (channel_id, topic_id)
);
COMMENT ON TABLE chat.topics IS
    'Topics of a channel: clusters of window embeddings, labelled by class-based TF-IDF top terms and emotes.';

CREATE TABLE chat.window_topics (
    channel_id    integer     NOT NULL,
    window_start  timestamptz NOT NULL,
    topic_id      integer     NOT NULL,
    share         real        NOT NULL CHECK (share >= 0 AND share <= 1),
    CONSTRAINT window_topics_key PRIMARY KEY (channel_id, window_start, topic_id),
    CONSTRAINT window_topics_topic_fkey FOREIGN KEY (channel_id, topic_id)
        REFERENCES chat.topics (channel_id, topic_id) ON DELETE CASCADE
);
COMMENT ON TABLE chat.window_topics IS
    'Share of each topic in a 30-s window (its messages assigned to the nearest topic, weighted as in the window embedding).';

CREATE TABLE chat.embed_state (
    model      text        PRIMARY KEY,
    last_seq   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE chat.embed_state IS 'Embedding progress: messages up to last_seq are in their windows.';

CREATE FUNCTION chat.enable_vectors() RETURNS boolean
LANGUAGE plpgsql AS $fn$
BEGIN
    IF to_regclass('chat.window_embeddings') IS NOT NULL THEN
        RETURN true;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
        RAISE NOTICE 'pgvector is not available on this server: embeddings and ask are off';
        RETURN false;
    END IF;
    BEGIN
        CREATE EXTENSION IF NOT EXISTS vector;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'pgvector is available but this role may not create it: %', SQLERRM;
        RETURN false;
    END;
    EXECUTE $ddl$
        CREATE TABLE chat.text_embeddings (
            model      text        NOT NULL,
            text_hash  text        NOT NULL,
            embedding  vector(384) NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT text_embeddings_key PRIMARY KEY (model, text_hash)
        );
        COMMENT ON TABLE chat.text_embeddings IS
            'One embedding per distinct message text and model; text_hash = md5(chat.messages.text).';
        CREATE TABLE chat.window_embeddings (
            channel_id     integer     NOT NULL REFERENCES chat.channels (id),
            window_start   timestamptz NOT NULL,
            window_end     timestamptz NOT NULL,
            model          text        NOT NULL,
            messages       integer     NOT NULL,
            distinct_texts integer     NOT NULL,
            embedding      vector(384) NOT NULL,
            computed_at    timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT window_embeddings_key PRIMARY KEY (channel_id, window_start)
        );
        COMMENT ON TABLE chat.window_embeddings IS
            'One unit vector per channel and 30-s window: mean of its distinct texts'' vectors weighted by 1 + ln(count).';
        CREATE INDEX window_embeddings_hnsw_idx ON chat.window_embeddings
            USING hnsw (embedding vector_cosine_ops);
        CREATE INDEX window_embeddings_time_idx ON chat.window_embeddings (window_start);
    $ddl$;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chatpulse_reader') THEN
        EXECUTE 'GRANT SELECT ON chat.text_embeddings, chat.window_embeddings TO chatpulse_reader';
    END IF;
    RETURN true;
END
$fn$;
COMMENT ON FUNCTION chat.enable_vectors() IS
    'Creates pgvector and the embedding tables when the extension is available; true when they exist.';

SELECT chat.enable_vectors();
