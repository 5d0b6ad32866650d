"""What the ``transformers`` and ``onnx`` backends share; imports neither torch nor transformers.

Both backends run the same three CardiffNLP-style sequence classifiers and must turn the same
text into the same :class:`~scorer.backends.base.Score`, so the text preprocessing, the reading
of each model's labels (``config.json`` ``id2label``), the batching and the mapping of
probabilities to a score row live here, once.  The three roles:

* ``sentiment``: 3 classes ``negative``/``neutral``/``positive`` (softmax), e.g.
  ``cardiffnlp/twitter-roberta-base-sentiment-latest``; ``sentiment = p_positive - p_negative``;
* ``emotion``: multilabel, labels named as :data:`~scorer.backends.base.EMOTIONS` (sigmoid per
  label), e.g. ``cardiffnlp/twitter-roberta-base-emotion-multilabel-latest``;
* ``offensive``: 2 classes (softmax), ``toxicity = p(offensive)``, e.g.
  ``cardiffnlp/twitter-roberta-base-offensive``.

Unnamed labels (``LABEL_0``, ``LABEL_1``, ...) are read in CardiffNLP's order: negative, neutral,
positive; the emotions in :data:`EMOTIONS` order; non-offensive, offensive.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from scorer.backends.base import EMOTIONS, BackendError, Label, Score

if TYPE_CHECKING:  # numpy is imported where it is used: the base install has none (lexicon)
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_MODELS",
    "MANIFEST",
    "MODEL_FILES",
    "PREPROCESS_VERSION",
    "ROLES",
    "LabelMaps",
    "LogitRunner",
    "ResolvedModel",
    "build_scores",
    "dir_digest",
    "length_batches",
    "model_name",
    "preprocess",
    "read_config",
    "read_label_maps",
    "resolve_model",
    "role_specs",
    "score_texts",
    "sigmoid",
    "softmax",
]

#: Bump when :func:`preprocess` or the probability -> score mapping changes (it is part of every
#: model name these backends write).
PREPROCESS_VERSION = "1"

ROLES: tuple[str, ...] = ("sentiment", "emotion", "offensive")

#: The ``onnx`` backend's export layout (here, so that ``models export`` needs no onnxruntime to
#: import): the manifest's name, and precision -> file name inside each role's directory.
MANIFEST = "manifest.json"
MODEL_FILES: Mapping[str, str] = MappingProxyType({"fp32": "model.onnx", "int8": "model.int8.onnx"})

#: The hub models each role uses unless told otherwise.
DEFAULT_MODELS: Mapping[str, str] = MappingProxyType(
    {
        "sentiment": "cardiffnlp/twitter-roberta-base-sentiment-latest",
        "emotion": "cardiffnlp/twitter-roberta-base-emotion-multilabel-latest",
        "offensive": "cardiffnlp/twitter-roberta-base-offensive",
    }
)

DEFAULT_BATCH_SIZE = 32
#: Tokens per message, special tokens included.  A 500-character chat message is rarely above
#: ~150 byte-level BPE tokens; the tail of longer ones says little about the mood.
DEFAULT_MAX_LENGTH = 128

# Invisible characters that carry nothing: the tag block (U+E0000..E007F; Chatterino/7TV append
# U+E0000 to dodge Twitch's duplicate-message filter) and zero-width characters.
_INVISIBLE = re.compile("[\U000e0000-\U000e007f\u200b\u200c\u2060\ufeff]")

# The files that decide a local model's outputs; their bytes make its version.
_MODEL_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "model.safetensors",
    "pytorch_model.bin",
)
# What a hub snapshot needs for torch inference (not the TF/Flax weights).
_HUB_PATTERNS = [*_MODEL_FILES[:-2], "model.safetensors", "pytorch_model.bin", "*.model"]


def preprocess(text: str) -> str:
    """Return ``text`` as CardiffNLP's models saw their training tweets.

    Their model cards' ``preprocess``: a word starting with ``@`` (and longer than it) becomes
    ``@user``, one starting with ``http`` becomes ``http``; words are split on single spaces, so
    whitespace is otherwise kept.  Invisible characters are removed first.
    """
    words = _INVISIBLE.sub("", text).split(" ")
    out = []
    for word in words:
        if word.startswith("@") and len(word) > 1:
            word = "@user"
        elif word.startswith("http"):
            word = "http"
        out.append(word)
    return " ".join(out)


def length_batches(texts: Sequence[str], batch_size: int) -> list[list[int]]:
    """Split indices of ``texts`` into batches of at most ``batch_size``, similar lengths together.

    Padding to the longest text of a batch costs work on every shorter one; sorting by length
    first keeps that waste small.  The caller scatters results back by index.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def softmax(logits: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Row-wise softmax of a 2-D array, in float64."""
    import numpy as np

    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=1, keepdims=True)
    e = np.exp(x)
    out: npt.NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
    return out


def sigmoid(logits: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Element-wise logistic function, in float64."""
    import numpy as np

    out: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))
    return out


@dataclass(frozen=True, slots=True)
class LabelMaps:
    """Where each value sits in a model's output row, read from its ``id2label``.

    ``sentiment``: the indices of negative, neutral and positive; ``emotions``: emotion name ->
    index; ``offensive``: the index of the offensive class.  Only the field of the model's role is
    set.
    """

    sentiment: tuple[int, int, int] | None = None
    emotions: Mapping[str, int] | None = None
    offensive: int | None = None


_UNNAMED = re.compile(r"^label_(\d+)$")


def _id2label(config: Mapping[str, Any], where: str) -> dict[int, str]:
    raw = config.get("id2label")
    if raw is None:
        # transformers leaves out id2label when it is its default: LABEL_0..LABEL_{n-1}, n = 2
        # unless num_labels says otherwise.
        n = config.get("num_labels", 2)
        if not isinstance(n, int) or n < 1:
            raise BackendError(f"{where}: config.json has no id2label and no usable num_labels")
        return {i: f"label_{i}" for i in range(n)}
    if not isinstance(raw, dict) or not raw:
        raise BackendError(f"{where}: config.json id2label is not a non-empty mapping")
    try:
        return {int(k): str(v).strip().lower() for k, v in raw.items()}
    except ValueError as exc:
        raise BackendError(f"{where}: config.json id2label has a non-integer id") from exc


def _unnamed(labels: dict[int, str]) -> bool:
    return all(_UNNAMED.match(v) for v in labels.values())


def read_label_maps(role: str, config: Mapping[str, Any], where: str) -> LabelMaps:
    """Map the labels of a model's ``config`` (its parsed ``config.json``) for ``role``.

    ``where`` names the model in errors.  Raises :class:`BackendError` when the labels do not fit
    the role (e.g. a 2-class model given as the sentiment model).
    """
    labels = _id2label(config, where)
    n = len(labels)
    if sorted(labels) != list(range(n)):
        raise BackendError(f"{where}: id2label ids are not 0..{n - 1}")
    if role == "sentiment":
        if n != 3:
            raise BackendError(f"{where}: a sentiment model needs 3 labels, it has {n}")
        if _unnamed(labels):
            return LabelMaps(sentiment=(0, 1, 2))
        index = {name: i for i, name in labels.items()}
        names = ("negative", "neutral", "positive")
        if set(index) != set(names):
            raise BackendError(
                f"{where}: sentiment labels must be negative, neutral, positive; "
                f"found {sorted(index)}"
            )
        neg, neu, pos = (index[name] for name in names)
        return LabelMaps(sentiment=(neg, neu, pos))
    if role == "emotion":
        if _unnamed(labels):
            if n != len(EMOTIONS):
                raise BackendError(
                    f"{where}: unnamed emotion labels need {len(EMOTIONS)} classes, found {n}"
                )
            return LabelMaps(emotions=MappingProxyType({e: i for i, e in enumerate(EMOTIONS)}))
        unknown = sorted(set(labels.values()) - set(EMOTIONS))
        if unknown:
            raise BackendError(
                f"{where}: emotion labels {unknown} are not among {', '.join(EMOTIONS)}"
            )
        return LabelMaps(emotions=MappingProxyType({name: i for i, name in labels.items()}))
    if role == "offensive":
        if n != 2:
            raise BackendError(f"{where}: an offensive model needs 2 labels, it has {n}")
        if _unnamed(labels):
            return LabelMaps(offensive=1)
        positive = [i for i, name in labels.items() if not re.match(r"^(non|not|no)[-_ ]?", name)]
        if len(positive) != 1:
            raise BackendError(
                f"{where}: offensive labels must be like non-offensive/offensive; "
                f"found {sorted(labels.values())}"
            )
        return LabelMaps(offensive=positive[0])
    raise ValueError(f"unknown role {role!r}")


class LogitRunner(Protocol):
    """One loaded model of a backend: label maps and a batch-to-logits function."""

    maps: LabelMaps

    def logits(self, texts: list[str]) -> npt.NDArray[np.float32]: ...


def score_texts(
    runners: Mapping[str, LogitRunner],
    texts: Sequence[str],
    channels: Sequence[str] | None,
    batch_size: int,
) -> list[Score]:
    """Preprocess, batch by length, run every model, and map the logits to scores.

    The shared body of the transformers and onnx backends, so that both score alike.  Errors
    of the runtime propagate as they are (each backend wraps its own).
    """
    import numpy as np

    if channels is not None and len(channels) != len(texts):
        raise ValueError("channels must have the same length as texts")
    if not texts:
        return []
    clean = [preprocess(t) for t in texts]
    logits: dict[str, npt.NDArray[np.float32]] = {}
    for role, runner in runners.items():
        rows: npt.NDArray[np.float32] | None = None
        for batch in length_batches(clean, batch_size):
            out = runner.logits([clean[i] for i in batch])
            if rows is None:
                rows = np.empty((len(clean), out.shape[1]), dtype=np.float32)
            rows[batch] = out
        assert rows is not None
        logits[role] = rows
    maps = {role: runner.maps for role, runner in runners.items()}
    return build_scores(logits["sentiment"], logits.get("emotion"), logits.get("offensive"), maps)


def build_scores(
    sentiment: npt.NDArray[Any],
    emotions: npt.NDArray[Any] | None,
    offensive: npt.NDArray[Any] | None,
    maps: Mapping[str, LabelMaps],
) -> list[Score]:
    """Turn the three models' logits (rows in text order) into one :class:`Score` per row.

    ``emotions``/``offensive`` are ``None`` when that model is not loaded: those columns stay
    ``None``.  ``maps`` has the :class:`LabelMaps` of each loaded role.
    """
    import numpy as np

    idx = maps["sentiment"].sentiment
    assert idx is not None
    probs = softmax(sentiment)[:, list(idx)]
    emo = sigmoid(emotions) if emotions is not None else None
    emo_map = maps["emotion"].emotions if emotions is not None else None
    tox = None
    if offensive is not None:
        off = maps["offensive"].offensive
        assert off is not None
        tox = softmax(offensive)[:, off]
    labels: tuple[Label, Label, Label] = ("negative", "neutral", "positive")
    out = []
    for row in range(probs.shape[0]):
        p_neg, p_neu, p_pos = (float(v) for v in probs[row])
        if emo is not None and emo_map is not None:
            values: dict[str, float | None] = {
                name: (float(emo[row, emo_map[name]]) if name in emo_map else None)
                for name in EMOTIONS
            }
        else:
            values = dict.fromkeys(EMOTIONS)
        out.append(
            Score(
                sentiment=p_pos - p_neg,
                label=labels[int(np.argmax(probs[row]))],
                p_negative=p_neg,
                p_neutral=p_neu,
                p_positive=p_pos,
                emotions=MappingProxyType(values),
                toxicity=float(tox[row]) if tox is not None else None,
            )
        )
    return out


def dir_digest(path: Path, names: Iterable[str] = _MODEL_FILES) -> str:
    """Return a sha256 hex digest over the named files of directory ``path`` that exist.

    File names are part of the digest, so a renamed file changes it.  Reads every byte: about a
    second per GB.
    """
    h = hashlib.sha256()
    for name in sorted(names):
        file = path / name
        if file.is_file():
            h.update(name.encode() + b"\0")
            with file.open("rb") as f:
                h.update(hashlib.file_digest(f, "sha256").digest())
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A model found on disk: its directory, a display name and a version (hub commit or hash)."""

    path: Path
    name: str
    version: str


def _offline() -> bool:
    # Read at call time, not import time, unlike huggingface_hub.constants.
    return any(
        os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def resolve_model(spec: str, role: str) -> ResolvedModel:
    """Find the model ``spec`` (a local directory, or a hub name with an optional ``@revision``).

    A local directory's version is a digest of its files; a hub model's is its commit hash.  Hub
    models come from the Hugging Face cache, downloaded when missing unless ``HF_HUB_OFFLINE`` (or
    ``TRANSFORMERS_OFFLINE``) is set.  Raises :class:`BackendError` naming the model and the role
    when it cannot be found.
    """
    local = Path(spec).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise BackendError(f"{role} model {spec}: no config.json in that directory")
        return ResolvedModel(local.resolve(), local.resolve().name, dir_digest(local)[:12])
    if spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise BackendError(f"{role} model {spec}: no such directory")
    repo, _, revision = spec.partition("@")
    try:
        from huggingface_hub import snapshot_download

        folder = Path(
            snapshot_download(
                repo,
                revision=revision or None,
                allow_patterns=_HUB_PATTERNS,
                local_files_only=_offline(),
            )
        )
    except Exception as exc:  # huggingface_hub raises many types: not found, offline, network
        hint = " (HF_HUB_OFFLINE is set: only cached models can be used)" if _offline() else ""
        raise BackendError(
            f"{role} model {spec} cannot be found locally or on the hub{hint}: {exc}"
        ) from exc
    # A snapshot folder is named by its commit hash.
    return ResolvedModel(folder, repo.rsplit("/", 1)[-1], folder.name[:12])


def read_config(path: Path, where: str) -> dict[str, Any]:
    """Parse ``path/config.json``; raise :class:`BackendError` naming ``where`` on failure."""
    try:
        config: dict[str, Any] = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackendError(f"{where}: cannot read config.json: {exc}") from exc
    return config


def model_name(kind: str, stem: str, parts: Iterable[str]) -> str:
    """Return ``<kind>:<stem>@<12 hex>``, the hex digesting ``parts`` and the preprocessing.

    ``parts`` must list everything that decides the scores (each role's model version, the
    maximum length, the precision), so that changing any of them gives a new name.
    """
    h = hashlib.sha256(f"preprocess={PREPROCESS_VERSION}".encode())
    for part in parts:
        h.update(b"\0" + part.encode())
    return f"{kind}:{stem}@{h.hexdigest()[:12]}"


def role_specs(
    sentiment: str | None,
    emotion: str | None,
    offensive: str | None,
    model_dir: str | os.PathLike[str] | None,
) -> dict[str, str | None]:
    """Decide which model each role uses: ``None`` leaves that role out.

    With ``model_dir``, the roles are its subdirectories ``sentiment/`` (required), ``emotion/``
    and ``offensive/`` (each used when present), and the three names are ignored.  Without it,
    each name is a local directory or a hub name; an empty name leaves the role out, but the
    sentiment model is required.  Raises :class:`BackendError` when no sentiment model is given.
    """
    if model_dir is not None:
        root = Path(model_dir).expanduser()
        if not (root / "sentiment").is_dir():
            raise BackendError(
                f"model directory {root} has no sentiment/ subdirectory "
                "(expected sentiment/, emotion/, offensive/)"
            )
        return {role: str(root / role) if (root / role).is_dir() else None for role in ROLES}
    specs = {
        "sentiment": sentiment or None,
        "emotion": emotion or None,
        "offensive": offensive or None,
    }
    if specs["sentiment"] is None:
        raise BackendError("a sentiment model is required")
    return specs
