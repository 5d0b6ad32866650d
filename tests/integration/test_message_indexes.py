"""Every index of chat.messages serves a query (issue 18: each one is paid on every insert)."""

from __future__ import annotations

import psycopg


def _indexes(url: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes"
            " WHERE schemaname = 'chat' AND tablename = 'messages'"
        ).fetchall()
    return {name: definition for name, definition in rows}


def test_no_index_on_ingest_seq_alone(db_url: str) -> None:
    indexes = _indexes(db_url)
    alone = [n for n, d in indexes.items() if d.endswith("USING btree (ingest_seq)")]
    assert alone == [], alone
    # What the scorer does read in (ingest_xid, ingest_seq) order keeps its index.
    assert "messages_ingest_xid_idx" in indexes


def test_scorer_claim_order_still_reads_an_index(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_sort = off")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT m.message_id FROM chat.messages m"
                " WHERE (m.ingest_xid, m.ingest_seq) > ('0'::xid8, 0)"
                " ORDER BY m.ingest_xid, m.ingest_seq LIMIT 256"
            ).fetchall()
        )
    assert "messages_ingest_xid_idx" in plan, plan
