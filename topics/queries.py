"""The named queries of embeddings, ask and topics: ``sql/queries/topics.sql`` through the
core loader."""

from __future__ import annotations

from typing import LiteralString

from chatpulse.core.queries import load_queries

__all__ = ["query"]


def query(name: str) -> LiteralString:
    """The statement named ``name`` (KeyError for an unknown name)."""
    return load_queries("topics")[name]
