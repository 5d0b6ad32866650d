"""Scoring backends: turn chat texts into sentiment, emotion and toxicity scores.

``load_backend("lexicon")`` gives the default, dependency-light backend
(:class:`scorer.backends.lexicon.LexiconBackend`).  Backends are imported only when loaded, so
that choosing ``lexicon`` never imports numpy, torch, tokenizers or onnxruntime: the base install
(``pip install chatpulse``, no extras) has none of them.  Choosing a backend whose extra is not
installed raises :class:`MissingExtraError` (a :class:`~chatpulse.core.errors.ConfigError`: the CLI
exits 2) naming the extra to install.
"""

from __future__ import annotations

import importlib
from typing import Any

from chatpulse.core.errors import ConfigError
from scorer.backends.base import EMOTIONS, BackendError, Label, Score, ScoringBackend

__all__ = [
    "BACKENDS",
    "EMOTIONS",
    "EXTRAS",
    "BackendError",
    "Label",
    "MissingExtraError",
    "Score",
    "ScoringBackend",
    "import_backend",
    "load_backend",
]

#: Backend name -> "module:class", imported on demand.  ``None``: named in the design, not
#: implemented yet.
BACKENDS: dict[str, str | None] = {
    "lexicon": "scorer.backends.lexicon:LexiconBackend",
    "transformers": "scorer.backends.transformers_backend:TransformersBackend",
    "onnx": "scorer.backends.onnx_backend:OnnxBackend",
}

#: Backend name -> the ``pip install 'chatpulse[EXTRA]'`` extra that brings its libraries.
EXTRAS: dict[str, str] = {"transformers": "ml", "onnx": "onnx"}

#: Top-level modules that only the extras install; an ImportError naming one means "no extra".
_EXTRA_MODULES = frozenset({"numpy", "torch", "transformers", "tokenizers", "onnxruntime", "onnx"})


class MissingExtraError(BackendError, ConfigError):
    """The chosen backend needs libraries of an extra that is not installed (exit code 2)."""


def import_backend(name: str) -> type[ScoringBackend]:
    """Import the class of backend ``name`` (and the libraries it needs).

    Raises :class:`MissingExtraError` when the backend's extra is not installed, and
    :class:`BackendError` for an unknown name, a backend that is not available yet, or one
    whose import fails otherwise.  Commands call it before any work, so that a missing extra
    is the first thing said.
    """
    if name not in BACKENDS:
        raise BackendError(f"unknown scoring backend {name!r} (choose from {', '.join(BACKENDS)})")
    target = BACKENDS[name]
    if target is None:
        raise BackendError(f"scoring backend {name!r} is not available yet")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing in _EXTRA_MODULES and name in EXTRAS:
            extra = EXTRAS[name]
            raise MissingExtraError(
                f"scorer_backend (CHATPULSE_SCORER_BACKEND): the {name!r} backend needs the "
                f"{extra!r} extra ({missing} is not installed): pip install 'chatpulse[{extra}]'"
            ) from exc
        raise BackendError(f"scoring backend {name!r} cannot be imported: {exc}") from exc
    cls: type[ScoringBackend] = getattr(module, class_name)
    return cls


def load_backend(name: str, **options: Any) -> ScoringBackend:
    """Import and construct the backend called ``name`` with ``options`` as keyword arguments.

    Raises what :func:`import_backend` raises, and :class:`BackendError` when construction
    fails (the message names the backend).
    """
    cls = import_backend(name)
    try:
        backend: ScoringBackend = cls(**options)
    except TypeError as exc:  # an option the backend does not take
        raise BackendError(f"scoring backend {name!r}: bad options: {exc}") from exc
    return backend
