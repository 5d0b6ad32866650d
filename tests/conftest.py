"""The root conftest: registers the shared fixtures, which live in plugins (tests/plugins/).

=====================  =====================================================================
plugin                 fixtures
=====================  =====================================================================
``database``           ``admin_url``, ``template_db``, ``db_url``, ``empty_db_url``,
                       ``ts_empty_db_url``: real PostgreSQL databases, fresh for each test
``proxy``              ``db_proxy``: a TCP proxy in front of the test database, to cut it
``fake_twitch``        ``fake_twitch``: a Twitch IRC-over-WebSocket server on a local socket
``http``               ``http_stub``, ``emote_api``: local HTTP servers with scripted answers
``models``             ``models``, ``export``: tiny transformer models, built once per run
=====================  =====================================================================

Data paths are named once, in :mod:`tests.paths`; helpers (``free_port``, ``wait_until``) once,
in :mod:`tests.helpers`.  Unit tests (tests/unit) do no file or network I/O: their own conftest
enforces it.  The database helpers are re-exported for modules that import them from here
(lazily: a plugin imported before pytest registers it would not get assertion rewriting).
"""

from __future__ import annotations

from typing import Any

from tests.paths import FIXTURES, ROOT

pytest_plugins = [
    "tests.plugins.database",
    "tests.plugins.proxy",
    "tests.plugins.fake_twitch",
    "tests.plugins.http",
    "tests.plugins.models",
]

__all__ = ["FIXTURES", "ROOT"]

#: Re-exported lazily from tests.plugins.database.
_DATABASE_NAMES = frozenset(
    {
        "ADMIN_URL",
        "DB_PREFIX",
        "LOCK_CLASS",
        "RUN_ID",
        "create_database",
        "drop_database",
        "run_prefix",
        "sweep_databases",
        "timescaledb_admin_url",
        "with_dbname",
    }
)


def __getattr__(name: str) -> Any:
    if name in _DATABASE_NAMES:
        from tests.plugins import database

        return getattr(database, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
