"""The batch writer: events in, rows in the database exactly once, or in the spool.

One writer task per collector drains a bounded queue, batches by size and time, and writes
each batch in one transaction: ``COPY`` into temporary staging tables, then
``INSERT … ON CONFLICT DO NOTHING`` into ``chat.messages``, ``chat.emote_uses`` and
``chat.moderation_events`` (the unique keys make replays, gap fill and redundant collectors
harmless; duplicates are counted, not errors).  Gap bookkeeping travels as control events in
the same stream, so it is ordered with the messages and survives outages too.

While the database is unreachable, batches go to the on-disk spool (fsynced before they count
as written) and are replayed in order when it returns; while anything is spooled, new batches
queue behind it.  A batch the database rejects for its content (not for being down) is split
until the offending events are isolated; those go to the dead-letter file, the rest is written.

The parts, one job each:

* :mod:`collector.writer.classify`: which errors mean "down" (spool) and which "bad data";
* :mod:`collector.writer.channels`: the channel registry (login to ``chat.channels.id``);
* :mod:`collector.writer.rows`: messages as ``COPY`` text rows (pure);
* :mod:`collector.writer.batch`: one batch in one transaction (the SQL is in
  ``sql/queries/collector.sql``);
* :mod:`collector.writer.lanes`: the :class:`Writer` task, its two lanes, the spool and the
  dead letters.
"""

from __future__ import annotations

from collector.writer.batch import GAP_CLOSE, GAP_FILLED, GAP_OPEN, BatchResult, write_events
from collector.writer.channels import ChannelRegistry
from collector.writer.classify import DatabaseUnavailable, is_unavailable
from collector.writer.lanes import Writer

__all__ = [
    "GAP_CLOSE",
    "GAP_FILLED",
    "GAP_OPEN",
    "BatchResult",
    "ChannelRegistry",
    "DatabaseUnavailable",
    "Writer",
    "is_unavailable",
    "write_events",
]
