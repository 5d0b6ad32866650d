-- ask's full-text side on windows, not messages (issue 16, both backends).  Ranking every
-- matching message of a month of a busy channel (10 M rows; a common word matches millions)
-- costs seconds; a window's words as one tsvector make the full-text candidates the ~86,400
-- windows of that month, searched through a GIN index beside the vectors.
--
-- chat.window_embeddings.document: to_tsvector('simple', the window's messages, each one
-- once); written with the embedding (sql/queries/topics.sql upsert_window).  NULL for a row
-- written without it (ask then finds the window by meaning only).
--
-- chat.enable_vectors() is replaced so that a server which gains pgvector later gets the column
-- too; it now also adds what a newer migration defines to tables an older one created.

CREATE OR REPLACE FUNCTION chat.enable_vectors() RETURNS boolean
LANGUAGE plpgsql AS $fn$
BEGIN
    IF to_regclass('chat.window_embeddings') IS NULL THEN
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
    END IF;
    -- Migration 0023.
    EXECUTE $ddl$
        ALTER TABLE chat.window_embeddings ADD COLUMN IF NOT EXISTS document tsvector;
        COMMENT ON COLUMN chat.window_embeddings.document IS
            'to_tsvector(''simple'', the window''s messages); what ask''s full-text side searches.';
        CREATE INDEX IF NOT EXISTS window_embeddings_document_idx ON chat.window_embeddings
            USING gin (document);
    $ddl$;
    RETURN true;
END
$fn$;
COMMENT ON FUNCTION chat.enable_vectors() IS
    'Creates pgvector and the embedding tables when the extension is available; true when they exist.';

SELECT chat.enable_vectors();

-- Windows embedded before this migration: their documents from the messages still stored.
DO $$
BEGIN
    IF to_regclass('chat.window_embeddings') IS NOT NULL THEN
        UPDATE chat.window_embeddings e
        SET document = (
            SELECT to_tsvector('simple', string_agg(m.text, ' ' ORDER BY m.sent_at, m.message_id))
            FROM chat.messages m
            WHERE m.channel_id = e.channel_id
              AND m.sent_at >= e.window_start AND m.sent_at < e.window_end
        )
        WHERE e.document IS NULL;
    END IF;
END
$$;
