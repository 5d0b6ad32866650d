"""The compose file and image as users get them: pinned, complete, consistent with the code."""

from __future__ import annotations

import re

import yaml

from chatpulse.core.settings import Settings
from tests.paths import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_every_service_of_the_stack() -> None:
    services = COMPOSE["services"]
    commands = {name: svc.get("command") for name, svc in services.items()}
    assert commands["migrate"] == ["migrate"]
    assert commands["collector"] == ["collect", "--idle-without-channels"]
    assert commands["scorer"] == ["score"]
    assert commands["detector"] == ["detect"]
    assert commands["clipper"] == ["clipper", "serve"]
    assert commands["clipper-worker"] == ["clipper", "worker"]
    assert commands["recorder"][0] == "record"
    assert {"timescaledb", "grafana", "prometheus"} <= set(services)


def test_third_party_images_are_pinned() -> None:
    for name in ("timescaledb", "grafana", "prometheus"):
        image = COMPOSE["services"][name]["image"]
        tag = image.rsplit(":", 1)[1]
        # timescaledb-ha tags pin both: pg<major.minor>-ts<x.y.z>
        assert re.fullmatch(r"v?\d+\.\d+\.\d+|pg\d+\.\d+-ts\d+\.\d+\.\d+", tag), (
            f"{name}: {image} is not pinned to a version"
        )


def test_services_wait_for_migrate_and_have_distinct_metrics_ports() -> None:
    ports = []
    for name in ("collector", "scorer", "detector", "clipper-worker"):
        svc = COMPOSE["services"][name]
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        ports.append(svc["environment"]["CHATPULSE_METRICS_PORT"])
    assert len(set(ports)) == len(ports)


def test_env_example_names_only_real_settings() -> None:
    names = set(Settings.model_fields)
    for line in (ROOT / ".env.example").read_text().splitlines():
        key = line.split("=", 1)[0].strip()
        if key.startswith("CHATPULSE_") and key != "CHATPULSE_VERSION":
            assert key.removeprefix("CHATPULSE_").lower() in names, key


def test_image_is_slim_non_root_with_ffmpeg_and_doctor_healthcheck() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM python:${PYTHON_VERSION}-slim AS runtime" in dockerfile
    assert re.search(r"^USER chatpulse$", dockerfile, re.M)
    assert "ffmpeg" in dockerfile
    assert "HEALTHCHECK" in dockerfile and '"chatpulse", "doctor"' in dockerfile
    assert "VARIANT" in dockerfile  # torch only in the optional ml variant


def test_every_compose_command_is_a_real_chatpulse_command() -> None:
    from chatpulse.app.cli import build_parser

    parser = build_parser()
    for name, svc in COMPOSE["services"].items():
        command = svc.get("command")
        if not command or name in ("prometheus",) or not svc["image"].startswith("chatpulse"):
            continue  # not our image (nats: the server's own flags)
        args = [c.replace("${RECORD_CHANNEL:-}", "somechannel") for c in command]
        parsed = parser.parse_args(args)  # SystemExit (a failure) when it is not a command
        assert parsed.handler is not None, name


def test_every_mounted_path_exists() -> None:
    for name, svc in COMPOSE["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith(("./", "/")):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_every_variable_the_compose_file_uses_is_in_env_example() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    example = {
        line.split("=", 1)[0].strip()
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    assert used <= example, f"add to .env.example: {sorted(used - example)}"


def test_compose_keeps_embeddings_and_topics_current_on_a_database_with_pgvector() -> None:
    services = COMPOSE["services"]
    # timescale/timescaledb ships no pgvector; the -ha image ships it (sql/0020_topics.sql
    # creates the vector tables only where the extension is available).
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb-ha:")
    assert any("/home/postgres/pgdata" in v for v in services["timescaledb"]["volumes"])
    topics = services["topics"]
    assert topics["command"] == ["embed", "--topics"]
    assert topics["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    backend = topics["environment"]["CHATPULSE_EMBED_BACKEND"]
    assert backend.split(":-")[-1].rstrip("}") in ("torch", "onnx-int8")
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "embed" in re.search(r"pip install '\.\[ml,([a-z,]+)\]'", dockerfile).group(1)  # type: ignore[union-attr]


def test_image_copies_every_package_it_installs() -> None:
    import tomllib

    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, re.M))
    tops = {p.split(".")[0] for p in packages}
    assert tops <= copied, f"COPY into the image: {sorted(tops - copied)}"
