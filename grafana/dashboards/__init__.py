"""The chatpulse dashboards, as data: one module per dashboard, shared pieces in ``common``.

Every SQL here reads the documented relations of schema ``chat`` (README, "The SQL
contract"): the coarsest aggregate that answers a panel exactly (``activity_1m``,
``chat.unique_chatters()`` over ``chatters_1d/6h/1h/1m``, ``sentiment_1m``, ``emotes_1m`` or
``emotes_10s`` by interval), raw ``messages``/``message_scores`` only where a panel lists
individual messages.  Rules that keep them right on both backends ([GRAFANA]):

- time series select ``$__timeGroupAlias(col, $__interval)`` first and ``GROUP BY 1``, never a
  bare ``$__timeGroup`` (Grafana would alias every copy of it when the first macro is followed
  by a comma), and sort by time;
- a per-minute rate divides by ``$__interval_ms`` and the panel's minimum interval is the
  aggregate's bucket, so it stays a per-minute rate at any zoom;
- every text variable carries an explicit format, never Grafana's default escaping:
  ``${channel:sqlstring}`` (multi-value/include-all: ``'a','b'``, each quoted, ``'`` doubled)
  is used only as ``IN (${channel:sqlstring})`` or ``ARRAY[${channel:sqlstring}]``, and a
  single value is ``${model:sqlstring}`` in place of a whole literal (``'$model'`` would depend
  on the SQL datasource's default escaping); no ``--`` comments and no macro inside a string
  literal.

Each module ``grafana/dashboards/<name>.py`` has a ``UID`` and a function that returns the
dashboard's JSON; :data:`DASHBOARDS` registers them under the file stem Grafana reads
(``grafana/provisioning/dashboards/chatpulse/<name>.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grafana.dashboards import (
    audience,
    compare,
    emotes,
    forecast,
    moderation,
    moderation_response,
    overview,
    pipeline,
    search,
    sentiment,
    streams,
    topics,
)

__all__ = ["DASHBOARDS", "UIDS", "all_dashboards"]

DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    "overview": overview.overview,
    "emotes": emotes.emotes,
    "sentiment": sentiment.sentiment,
    "moderation": moderation.moderation,
    "moderation_response": moderation_response.moderation_response,
    "forecast": forecast.hype_forecast,
    "search": search.search,
    "pipeline": pipeline.pipeline,
    "streams": streams.streams,
    "audience": audience.audience,
    "compare": compare.compare,
    "topics": topics.topics_dashboard,
}

UIDS = {
    "overview": overview.UID,
    "emotes": emotes.UID,
    "sentiment": sentiment.UID,
    "moderation": moderation.UID,
    "moderation_response": moderation_response.UID,
    "forecast": forecast.UID,
    "search": search.UID,
    "pipeline": pipeline.UID,
    "streams": streams.UID,
    "audience": audience.UID,
    "compare": compare.UID,
    "topics": topics.UID,
}


def all_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard's JSON, keyed by its file stem (``overview`` ...)."""
    return {name: build() for name, build in DASHBOARDS.items()}
