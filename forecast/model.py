"""The forecast's classifier: scikit-learn's gradient boosting, trained per channel.

scikit-learn and numpy come with the ``forecast`` extra and are imported inside the functions
here, so importing this module needs neither; :func:`require_sklearn` turns a missing extra
into a :class:`~chatpulse.core.errors.ConfigError` (exit 2) that names it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chatpulse.core.errors import ConfigError
from forecast.features import (
    Counts,
    ForecastConfig,
    ForecastScore,
    Moment,
    Split,
    baseline_rule,
    features,
    labels,
    score_warnings,
)

__all__ = ["EXTRA_HINT", "Evaluation", "Model", "evaluate_split", "require_sklearn", "train"]

EXTRA_HINT = "pip install 'chatpulse[forecast]'"


def require_sklearn() -> None:
    """Raise ConfigError naming the ``forecast`` extra when scikit-learn is missing."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"the hype forecast needs scikit-learn (the 'forecast' extra): {EXTRA_HINT}"
        ) from None


@dataclass(slots=True)
class Model:
    """A trained classifier and what it was trained on."""

    classifier: Any
    threshold: float
    train_hops: int
    train_positive: int
    trained_moments: int
    train_last_hop: int  # the last hop a training row came from (absolute)

    def probabilities(self, rows: Sequence[Sequence[float] | None]) -> list[float | None]:
        """P(a peak within the horizon) per row (None where the row is None)."""
        import numpy as np

        idx = [i for i, r in enumerate(rows) if r is not None]
        out: list[float | None] = [None] * len(rows)
        if idx:
            x = np.asarray([rows[i] for i in idx], dtype=float)
            for i, p in zip(idx, self.classifier.predict_proba(x)[:, 1], strict=True):
                out[i] = float(p)
        return out

    def warn(self, rows: Sequence[Sequence[float] | None]) -> list[bool]:
        return [p is not None and p >= self.threshold for p in self.probabilities(rows)]


def training_rows(
    counts: Counts,
    moments: Sequence[Moment],
    config: ForecastConfig,
    until_hop: int,
    rows: Sequence[Sequence[float] | None] | None = None,
) -> tuple[list[list[float]], list[int], list[int]]:
    """(X, y, absolute hops) of the hops before ``until_hop`` with features and a label."""
    rows = features(counts, config) if rows is None else rows
    lab = labels(counts, moments, config)
    x, y, hops = [], [], []
    for i, (r, v) in enumerate(zip(rows, lab, strict=True)):
        h = counts.start + i
        if h >= until_hop:
            break
        if r is not None and v is not None:
            x.append(list(r))
            y.append(v)
            hops.append(h)
    return x, y, hops


def train(
    counts: Counts,
    moments: Sequence[Moment],
    config: ForecastConfig,
    until_hop: int,
    rows: Sequence[Sequence[float] | None] | None = None,
) -> Model:
    """Train on the hops before ``until_hop`` whose label is known there (the horizon after
    them ends by ``until_hop``).  Raises ValueError when they hold no positive example."""
    require_sklearn()
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    cut = until_hop - config.hops(config.horizon_s)
    x, y, hops = training_rows(counts, moments, config, cut, rows)
    positive = sum(y)
    if positive == 0 or positive == len(y):
        raise ValueError("no hype moment (or nothing else) in the training period")
    clf = HistGradientBoostingClassifier(
        max_iter=150,
        learning_rate=0.05,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        l2_regularization=1.0,
        random_state=0,
    )
    clf.fit(np.asarray(x, dtype=float), np.asarray(y, dtype=int))
    trained = sum(1 for m in moments if m.peak_hop < cut)
    return Model(clf, config.threshold, len(y), positive, trained, hops[-1])


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A time-split evaluation of one channel: the model and the trivial baseline."""

    split: Split
    model: Model
    forecast: ForecastScore
    baseline: ForecastScore


def evaluate_split(
    counts: Counts, moments: Sequence[Moment], config: ForecastConfig, split: Split
) -> Evaluation:
    """Train before ``split.train_end``, score hops from ``split.test_start`` on."""
    rows = features(counts, config)
    model = train(counts, moments, config, split.train_end + config.hops(config.horizon_s), rows)
    assert model.train_last_hop < split.train_end
    hi = counts.end
    test = [m for m in moments if m.peak_hop > split.test_start]
    fc = score_warnings(counts.start, model.warn(rows), test, config, split.test_start, hi)
    bl = score_warnings(counts.start, baseline_rule(rows), test, config, split.test_start, hi)
    return Evaluation(split, model, fc, bl)
