"""The contract every scoring backend keeps: one :class:`Score` per message, in order.

A backend turns chat texts into the values of one ``chat.message_scores`` row (README, "The SQL
contract"): ``sentiment`` in -1..1, a ``label`` with the three class probabilities, the
eleven nullable emotion columns and ``toxicity`` in 0..1.  ``model`` (``name@version``) goes into
the row's ``model`` column and is part of its unique key, so a backend must change it whenever its
scores for the same text could change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from chatpulse.core.contract import EMOTIONS
from chatpulse.core.errors import ChatpulseError

__all__ = ["EMOTIONS", "BackendError", "Label", "Score", "ScoringBackend"]


Label = Literal["negative", "neutral", "positive"]


@dataclass(frozen=True, slots=True)
class Score:
    """The scores of one message, ready for a ``chat.message_scores`` row.

    ``sentiment`` is in -1..1; ``p_negative + p_neutral + p_positive == 1`` (within float
    rounding) and ``label`` is the most probable class.  ``emotions`` has one key per name in
    :data:`EMOTIONS`: a 0..1 intensity, or ``None`` where the backend does not estimate that
    emotion (the column stays NULL).  ``toxicity`` is 0..1, or ``None`` if not estimated.
    """

    sentiment: float
    label: Label
    p_negative: float
    p_neutral: float
    p_positive: float
    emotions: Mapping[str, float | None]
    toxicity: float | None


class ScoringBackend(Protocol):
    """What the scorer loop needs from a backend.

    ``model`` is ``name@version``; it must be deterministic for a given code and data version
    and change when scores could change.
    """

    model: str

    def score(self, texts: Sequence[str], channels: Sequence[str] | None = None) -> list[Score]:
        """Score ``texts``; return exactly one :class:`Score` per text, in the same order.

        ``channels[i]``, when given, is the channel login of ``texts[i]`` (for channel-specific
        emote meanings); it must then have the same length as ``texts``, else ``ValueError``.
        Never raises for odd text (empty, huge, any Unicode).  Raises :class:`BackendError` when
        the backend itself fails (a model that cannot run).
        """
        ...


class BackendError(ChatpulseError):
    """A scoring backend cannot be loaded or cannot run (unknown name, missing model, bad data)."""
