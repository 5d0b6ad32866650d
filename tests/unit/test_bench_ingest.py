"""The CPU ceiling that bench/ingest.py prints (issue 18): the best ratio to the schema limit a
writer can reach from its CPU per message, the cores and its lanes."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from tests.paths import ROOT


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_ingest", ROOT / "bench" / "ingest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_ingest", module)
    spec.loader.exec_module(module)
    return module


def test_ceiling_is_the_cores_shared_by_all_the_work_of_a_message() -> None:
    # 2 cores, 72 us of CPU a message in all, the limit's backend 22 us a row: 2 / 72 us is
    # 27,778 messages/s against 45,455 rows/s.
    assert _bench().ceiling(2, 2, 72e-6, 29e-6, 22e-6) == pytest.approx(2 * 22 / 72)


def test_ceiling_is_one_backend_per_lane_when_cores_are_plenty() -> None:
    # 16 cores, one lane: PostgreSQL's 30 us a message on one backend bound it, not the cores.
    assert _bench().ceiling(16, 1, 60e-6, 30e-6, 22e-6) == pytest.approx(22 / 30)


def test_ceiling_lanes_beyond_the_cores_add_no_backend() -> None:
    # 1 core, 4 lanes: the backends share the one core.
    assert _bench().ceiling(1, 4, 30e-6, 30e-6, 22e-6) == pytest.approx(22 / 30)


def test_ceiling_below_the_target_when_a_message_costs_more_than_cores_over_target() -> None:
    bench = _bench()
    budget = 2 * 22e-6 / 0.8  # 55 us on 2 cores
    assert bench.ceiling(2, 2, budget, 20e-6, 22e-6) == pytest.approx(0.8)
    assert bench.ceiling(2, 2, budget + 1e-6, 20e-6, 22e-6) < 0.8
