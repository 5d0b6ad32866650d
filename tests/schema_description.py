"""Describe the chat schema as text: one line per column, ``relation column type``.

The same description must come out of both backends (tables, views, continuous aggregates
alike), and must equal ``tests/integration/expected_schema.txt``.
"""

from __future__ import annotations

import psycopg

# Backend-specific helpers that are not part of the public contract.
INTERNAL = {"aggregate_invalidations", "schema_migrations"}
# Created only where pgvector is available (chat.enable_vectors(), migration 17); their columns
# are checked by tests/integration/test_topics_vectors.py.
VECTOR_ONLY = {"text_embeddings", "window_embeddings"}

QUERY = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'chat' AND c.relkind IN ('r', 'v', 'm', 'p') AND a.attnum > 0
  AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""


def describe_schema(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(QUERY).fetchall()
    return [f"{rel} {col} {typ}" for rel, col, typ in rows if rel not in INTERNAL | VECTOR_ONLY]
