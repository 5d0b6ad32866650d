"""Topics and ask-the-chat: embeddings of chat windows, hybrid search, topic timelines.

Pure code (tokens, log-odds, class-based TF-IDF, rank fusion) lives in :mod:`topics.text`;
the embedding backend in :mod:`topics.embed` (needs the ``embed`` extra); database work in
:mod:`topics.store`; SQL in ``sql/queries/topics.sql`` (read by the core loader).
"""

WINDOW_SECONDS = 30
