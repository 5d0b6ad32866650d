"""The foundation as a user meets it: the installed command, settings, migrate, doctor."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from tests.e2e.cli import run_cli


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["migrate"], {"CHATPULSE_DATABASE_URL": "mysql://nope"}, "CHATPULSE_DATABASE_URL"),
        (["migrate"], {"CHATPULSE_TIMESCALEDB": "maybe"}, "CHATPULSE_TIMESCALEDB"),
        (["collect", "--channel", "has space"], {}, "CHATPULSE_CHANNELS"),
        (["doctor", "--log-format", "xml"], {}, "CHATPULSE_LOG_FORMAT"),
        (["clipper", "serve", "--port", "99999"], {}, "CHATPULSE_CLIPPER_PORT"),
        (["migrate"], {"CHATPULSE_CONFIG": "/nonexistent/chatpulse.toml"}, "CHATPULSE_CONFIG"),
        (["migrate"], {"CHATPULSE_RETENTION": "forever"}, "CHATPULSE_RETENTION"),
    ],
)
def test_bad_setting_exits_2_and_names_it(args: list[str], env: dict[str, str], named: str) -> None:
    done = run_cli(*args, env=env)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr


def test_bad_toml_value_exits_2_naming_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "chatpulse.toml"
    cfg.write_text('batch_size = "many"\n')
    done = run_cli("--config", str(cfg), "migrate")
    assert done.returncode == 2
    assert "batch_size" in done.stderr


def test_secret_never_printed_by_doctor(empty_db_url: str, tmp_path: Path) -> None:
    url = empty_db_url.replace("postgres@", "postgres:not-a-real-pass@")
    done = run_cli(
        "doctor",
        "--json",
        env={
            "CHATPULSE_DATABASE_URL": url,
            "CHATPULSE_DATA_DIR": str(tmp_path),
            "CHATPULSE_WEBHOOK_TOKEN": "s3cr3t-token-value",
        },
    )
    assert "not-a-real-pass" not in done.stdout + done.stderr
    assert "s3cr3t-token-value" not in done.stdout + done.stderr
    report = json.loads(done.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["schema"]["status"] == "fail"  # not migrated yet
    assert done.returncode == 1


def test_migrate_then_doctor_against_postgres(empty_db_url: str, tmp_path: Path) -> None:
    env = {
        "CHATPULSE_DATABASE_URL": empty_db_url,
        "CHATPULSE_DATA_DIR": str(tmp_path),
        "CHATPULSE_TIMESCALEDB": "off",
    }
    first = run_cli("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "applied 0001" in first.stdout
    again = run_cli("migrate", env=env)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    doctor = run_cli("doctor", "--json", env=env)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["database"]["status"] == "ok"
    assert checks["schema"]["status"] == "ok"
    assert checks["data_dir"]["status"] == "ok"
    ffmpeg_ok = checks["ffmpeg"]["status"] == "ok"
    assert doctor.returncode == (0 if ffmpeg_ok else 1), doctor.stdout


def test_doctor_fails_when_database_unreachable(tmp_path: Path) -> None:
    done = run_cli(
        "doctor",
        env={
            "CHATPULSE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x",
            "CHATPULSE_DATA_DIR": str(tmp_path),
        },
    )
    assert done.returncode == 1
    assert "[FAIL] database" in done.stdout


def test_migrate_on_the_embedded_default(tmp_path: Path) -> None:
    """No database URL: migrate starts an embedded PostgreSQL in the data dir and stops it."""
    env = {"CHATPULSE_DATA_DIR": str(tmp_path / "data")}
    done = run_cli("migrate", env=env)
    if done.returncode != 0 and "cannot start the embedded PostgreSQL" in done.stderr:
        pytest.skip(f"embedded PostgreSQL cannot start here: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr
    assert "on postgres" in done.stdout
    pgdata = tmp_path / "data" / "postgres"
    assert (pgdata / "PG_VERSION").is_file()
    assert not (pgdata / "postmaster.pid").exists(), "embedded server left running"
    again = run_cli("migrate", env=env)
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_forget_removes_user_rows(db_url: str, tmp_path: Path) -> None:
    with psycopg.connect(db_url) as conn:
        cid = conn.execute("INSERT INTO chat.channels (name) VALUES ('c') RETURNING id").fetchone()
        assert cid is not None
        conn.execute(
            "INSERT INTO chat.messages (sent_at, channel_id, message_id, user_login, text) VALUES "
            "(now(), %s, 'a', 'bob', 'hi'), (now(), %s, 'b', 'amy', 'yo')",
            (cid[0], cid[0]),
        )
        conn.commit()
    done = run_cli(
        "forget",
        "--user",
        "Bob",
        env={"CHATPULSE_DATABASE_URL": db_url, "CHATPULSE_DATA_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["deleted"]["messages"] == 1
    with psycopg.connect(db_url) as conn:
        left = [r[0] for r in conn.execute("SELECT user_login FROM chat.messages")]
    assert left == ["amy"]
