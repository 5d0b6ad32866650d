"""``chatpulse doctor``: is everything a chatpulse stack needs there?

Checks the data directory, the database (reachable, schema version, TimescaleDB), FFmpeg,
the scoring models and Grafana.  Prints one line per check (or JSON) and exits non-zero when
a required check fails.  Secrets never appear: URLs are redacted, tokens are only "set".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from typing import Any, Literal

import httpx
from psycopg.rows import class_row, scalar_row

from chatpulse.core.db import connect, database
from chatpulse.core.errors import ChatpulseError
from chatpulse.core.migrate import load_migrations
from chatpulse.core.queries import load_queries
from chatpulse.core.settings import Settings, redact_url

__all__ = ["Check", "cmd_doctor", "run_checks"]

_Q = load_queries("app")  # sql/queries/app.sql


@dataclass(frozen=True, slots=True)
class _SchemaVersion:
    version: int
    backend: str | None


@dataclass(frozen=True, slots=True)
class _Timescale:
    installed: str | None
    available: str | None
    license: str | None


Status = Literal["ok", "warn", "fail"]


@dataclass(slots=True)
class Check:
    """One check's result; ``required`` checks that fail make ``doctor`` exit 1."""

    name: str
    status: Status
    detail: str
    required: bool = True


def _check_data_dir(settings: Settings) -> Check:
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check("data_dir", "fail", f"{path} is not writable: {exc}")
    free = shutil.disk_usage(path).free / 2**30
    return Check("data_dir", "ok" if free > 1 else "warn", f"{path} writable, {free:.1f} GiB free")


def _version(exe: str) -> str:
    out = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=10)
    return out.stdout.splitlines()[0] if out.stdout else "no version output"


def _check_ffmpeg(settings: Settings) -> list[Check]:
    """FFmpeg as the clipper resolves it (PATH, else imageio-ffmpeg's); ffprobe is optional."""
    from clipper.ffmpeg import ffprobe_for, find_ffmpeg

    exe = find_ffmpeg(settings.ffmpeg)
    if exe is None:
        return [
            Check(
                "ffmpeg",
                "fail",
                f"{settings.ffmpeg} not found (not on PATH, no imageio-ffmpeg binary): "
                "apt-get install ffmpeg, or set CHATPULSE_FFMPEG",
            )
        ]
    try:
        checks = [Check("ffmpeg", "ok", f"{exe}: {_version(exe)}")]
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [Check("ffmpeg", "fail", f"{exe} does not run: {exc}")]
    probe = ffprobe_for(exe)
    if probe == exe:
        checks.append(Check("ffprobe", "ok", "none; FFmpeg probes media itself", required=False))
        return checks
    try:
        checks.append(Check("ffprobe", "ok", f"{probe}: {_version(probe)}", required=False))
    except (OSError, subprocess.TimeoutExpired) as exc:
        checks.append(Check("ffprobe", "warn", f"{probe} does not run: {exc}", required=False))
    return checks


async def _check_database(url: str, settings: Settings, embedded: bool) -> list[Check]:
    where = (
        "embedded PostgreSQL in " + str(settings.data_dir / "postgres")
        if embedded
        else redact_url(url)
    )
    try:
        conn = await asyncio.wait_for(connect(url, autocommit=True), timeout=10)
    except (ChatpulseError, TimeoutError) as exc:
        return [Check("database", "fail", f"{where}: {exc}")]
    checks: list[Check] = []
    async with conn:
        scalar = conn.cursor(row_factory=scalar_row)
        await scalar.execute(_Q["server_version"])
        server = await scalar.fetchone()
        checks.append(Check("database", "ok", f"{where}: PostgreSQL {server or '?'}"))
        known = max(m.version for m in load_migrations())
        await scalar.execute(_Q["schema_migrated"])
        if not await scalar.fetchone():
            checks.append(Check("schema", "fail", "not migrated: run `chatpulse migrate`"))
            backend = None
        else:
            cur = conn.cursor(row_factory=class_row(_SchemaVersion))
            await cur.execute(_Q["schema_version"])
            schema = await cur.fetchone()
            version, backend = (schema.version, schema.backend) if schema else (0, None)
            if version < known:
                checks.append(
                    Check(
                        "schema",
                        "fail",
                        f"version {version}, code knows {known}: run `chatpulse migrate`",
                    )
                )
            elif version > known:
                checks.append(
                    Check(
                        "schema",
                        "fail",
                        f"version {version} is newer than this chatpulse ({known})",
                    )
                )
            else:
                checks.append(Check("schema", "ok", f"version {version} on {backend}"))
        status = conn.cursor(row_factory=class_row(_Timescale))
        await status.execute(_Q["timescaledb_status"])
        ts = await status.fetchone() or _Timescale(None, None, None)
        installed, available, license_ = ts.installed, ts.available, ts.license
        if installed:
            checks.append(
                Check(
                    "timescaledb",
                    "ok",
                    f"{installed} installed (license {license_ or '?'})",
                    required=False,
                )
            )
        elif available:
            checks.append(
                Check(
                    "timescaledb",
                    "warn",
                    f"{available} available, not installed"
                    + (" (schema uses plain PostgreSQL)" if backend == "postgres" else ""),
                    required=False,
                )
            )
        else:
            checks.append(
                Check(
                    "timescaledb",
                    "warn",
                    "not available: plain PostgreSQL (same tables, aggregates "
                    "refreshed by chatpulse)",
                    required=False,
                )
            )
    return checks


def _check_models(settings: Settings) -> Check:
    if settings.scorer_backend == "lexicon":
        return Check("models", "ok", "lexicon backend: no model needed", required=False)
    if settings.model_dir is None:
        return Check(
            "models",
            "warn",
            f"{settings.scorer_backend} backend without model_dir: hub names will be used",
            required=False,
        )
    if not settings.model_dir.is_dir():
        return Check("models", "fail", f"model_dir {settings.model_dir} does not exist")
    return Check("models", "ok", f"{settings.scorer_backend} models in {settings.model_dir}")


async def _check_grafana(settings: Settings) -> Check:
    if not settings.grafana_url:
        return Check("grafana", "ok", "not configured", required=False)
    url = settings.grafana_url.rstrip("/") + "/api/health"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            resp = await client.get(url)
        if resp.status_code == 200:
            return Check(
                "grafana", "ok", f"{redact_url(settings.grafana_url)} healthy", required=False
            )
        return Check("grafana", "warn", f"{url} answered {resp.status_code}", required=False)
    except httpx.HTTPError as exc:
        return Check(
            "grafana",
            "warn",
            f"{redact_url(settings.grafana_url)} unreachable: {exc}",
            required=False,
        )


def run_checks(settings: Settings) -> list[Check]:
    """Run every check and return the results (never raises for a failed check)."""
    checks = [_check_data_dir(settings)]
    if checks[0].status != "fail":
        try:
            with database(settings) as url:
                checks += asyncio.run(_check_database(url, settings, settings.database_url is None))
        except ChatpulseError as exc:
            checks.append(Check("database", "fail", str(exc)))
    checks += _check_ffmpeg(settings)
    checks.append(_check_models(settings))
    checks.append(asyncio.run(_check_grafana(settings)))
    secrets = {
        "twitch_oauth_token": settings.twitch_oauth_token,
        "webhook_token": settings.webhook_token,
        "webhook_hmac_secret": settings.webhook_hmac_secret,
    }
    detail = ", ".join(f"{k} {'set' if v else 'unset'}" for k, v in secrets.items())
    checks.append(Check("secrets", "ok", detail, required=False))
    return checks


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    """``chatpulse doctor``: exit 0 when every required check passes, 1 otherwise."""
    checks = run_checks(settings)
    failed = [c for c in checks if c.status == "fail" and c.required]
    if args.json:
        out: dict[str, Any] = {"ok": not failed, "checks": [asdict(c) for c in checks]}
        print(json.dumps(out, indent=2))
    else:
        marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
        for c in checks:
            print(f"[{marks[c.status]}] {c.name:<12} {c.detail}")
        print(
            "all required checks passed"
            if not failed
            else f"{len(failed)} required check(s) failed: " + ", ".join(c.name for c in failed)
        )
    return 0 if not failed else 1
