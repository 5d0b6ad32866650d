"""Scoring backends: turn chat texts into sentiment, emotion and toxicity scores.

``load_backend("lexicon")`` gives the default, dependency-light backend
(:class:`scorer.backends.lexicon.LexiconBackend`).  Backends are imported only when loaded, so
that choosing ``lexicon`` never imports torch or onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import Any

from scorer.backends.base import EMOTIONS, BackendError, Label, Score, ScoringBackend

__all__ = [
    "BACKENDS",
    "EMOTIONS",
    "BackendError",
    "Label",
    "Score",
    "ScoringBackend",
    "load_backend",
]

#: Backend name -> "module:class", imported on demand.  ``None``: named in the design, not
#: implemented yet.
BACKENDS: dict[str, str | None] = {
    "lexicon": "scorer.backends.lexicon:LexiconBackend",
    "transformers": "scorer.backends.transformers_backend:TransformersBackend",
    "onnx": "scorer.backends.onnx_backend:OnnxBackend",
}


def load_backend(name: str, **options: Any) -> ScoringBackend:
    """Import and construct the backend called ``name`` with ``options`` as keyword arguments.

    Raises :class:`BackendError` for an unknown name, a backend that is not available yet, or a
    backend whose import or construction fails (the message names the backend).
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
        raise BackendError(f"scoring backend {name!r} cannot be imported: {exc}") from exc
    try:
        backend: ScoringBackend = getattr(module, class_name)(**options)
    except TypeError as exc:  # an option the backend does not take
        raise BackendError(f"scoring backend {name!r}: bad options: {exc}") from exc
    return backend
