"""The ``lexicon`` scoring backend: VADER's rules plus a Twitch-aware lexicon of our own.

No model download, no GPU.  Token readings are cached (plain dicts of up to 65,536 tokens, emptied
when full; :func:`clear_caches` empties them), as are whole messages per backend instance;
``bench/score.py`` prints messages per second cold (every text distinct, every cache cleared),
warm and cached, each beside plain VADER on the same texts.  Most new tokens cost a set lookup and
a regex search: a plain word that no table, rule or phrase names shares one reading with every
other such word, and ``word,`` reads as ``word`` (see ``tokens._token``); other new tokens cost
about 10-25 us (their sentiment and toxicity readings, with the flags that say which passes they
may need).  A message of known tokens costs about 10-30 us: one walk over its tokens, and the
sentiment, phrase and toxicity passes run only when the tokens' flags say they could change the
result (exact prechecks); messages with equal scores share one ``Score``.
What it fills in a ``chat.message_scores`` row:

* ``sentiment``: VADER's compound score (Hutto & Gilbert 2014, "VADER: A Parsimonious Rule-based
  Model for Sentiment Analysis of Social Media Text", ICWSM-14) in -1..1, strictly inside the
  bounds.  The word valences and VADER's constants come from the MIT-licensed ``vaderSentiment``
  package (``vader_lexicon.txt``, ``BOOSTER_DICT``, ``NEGATE``, ``B_INCR``, ``C_INCR``,
  ``N_SCALAR``).  Its rules -- negation within three words, "no" before a sentiment word,
  boosters/dampeners with distance decay, ALL-CAPS emphasis when only some words are capitals,
  "least", the "but" shift (x0.5 before, x1.5 after), "!"/"?" emphasis, normalisation with
  alpha = 15 -- are re-implemented here over our own tokens rather than called through
  ``SentimentIntensityAnalyzer.polarity_scores``, because that method (checked against
  vaderSentiment 3.3.2) replaces every emoji by its English description before scoring (so 😭
  becomes "loudly crying face", negative, where chat means laughter), treats all-caps emote codes
  (LUL, KEKW, EZ) as shouting, knows nothing of elongation, and re-lowercases the whole sentence
  for each word, which is too slow for backfills.  Deliberate differences from the reference:
  booster words never carry a valence of their own; VADER's special-case idioms ("the shit",
  "yeah right") are read as phrases; its "but" rule is applied to every item (the reference's
  ``list.index`` lookup misplaces repeated values).
* ``p_negative``/``p_neutral``/``p_positive`` and ``label``: see
  :func:`compound_to_probabilities`.
* emotions: ``anger``, ``anticipation``, ``disgust``, ``fear``, ``joy``, ``love``, ``sadness``
  and ``surprise`` as 0..1 intensities (0.0 = no evidence); ``optimism``, ``pessimism`` and
  ``trust`` stay ``None``: no chat token is honest evidence of them.
* ``toxicity``: 0..1 from the word list in ``lexicon_data/toxicity.tsv``, see that file's
  header for the weighting (offensive on its own vs only when aimed at someone, quoting, banter,
  emphasis) and the obfuscation-resistant matching.  The product counts ``>= 0.5`` as toxic.

Twitch additions (data files under ``scorer/lexicon_data/``, each documenting its sources):
emote codes (``emotes.tsv``), emoji (``emoji.tsv``), chat slang and phrases (``slang.tsv``),
per-channel emotes given as categories (``categories.tsv``), and an emote-suffix heuristic
(``affixes.tsv``: an unknown ``nymnLUL`` reads as ``LUL``).  Elongation (``LULLLL``, ``noooo``)
reads as the base token plus VADER's booster increment; a repeated item counts 1, 1/2, 1/3, ...
(harmonic decay), so emote spam grows stronger but saturates.  Sarcasm markers (Kappa, 4Head,
Clueless, COPIUM, /s) turn the rest of the message's positive valence into half as much negative
and halve its negative valence: praise next to Kappa is usually mockery, a complaint next to it is
usually half a joke.  "sure buddy", "/s" and a Clap right after praise ("great play Clap") are
sarcasm markers too.  Laughter next to a put-down ("what a joke LUL", "SO BAD OMEGALUL") is
mockery: it counts negative (``_MOCK_SCALE``) and brings no joy.  Curly apostrophes are read as
straight ones, so "can’t" negates.

``model`` is ``lexicon@<ENGINE_VERSION>.<hash>``, the hash covering every data file, the
installed vaderSentiment version and :data:`ENGINE_VERSION` (bump that when the rules change), so
that a lexicon edit gives a new model name and re-scored rows never mix with old ones.  Per-channel
emote mappings are configuration and are *not* part of the model name.

The package, one job per module (each imports only those above it):

* ``model``: the constants, the token flags and the data classes the others share;
* ``text``: pure string folding (runs of a letter, leetspeak, look-alikes, apostrophes);
* ``loading``: reading and indexing the data files and VADER's tables once per process;
* ``toxicity``: a token's toxicity reading and a message's toxicity;
* ``tokens``: a whitespace-separated token's units (words, emotes, emoji) and its cached reading;
* ``sentiment``: VADER's rules over a message's units, emotions, probabilities;
* ``backend``: :class:`LexiconBackend`, which walks a message's tokens once for both scores.
"""

from __future__ import annotations

from scorer.backends.lexicon.backend import LexiconBackend, clear_caches
from scorer.backends.lexicon.loading import lexicon_version
from scorer.backends.lexicon.model import (
    CATEGORIES,
    ENGINE_VERSION,
    ESTIMATED_EMOTIONS,
    NEUTRAL_BAND,
)
from scorer.backends.lexicon.sentiment import compound_to_probabilities

__all__ = [
    "CATEGORIES",
    "ENGINE_VERSION",
    "ESTIMATED_EMOTIONS",
    "NEUTRAL_BAND",
    "LexiconBackend",
    "clear_caches",
    "compound_to_probabilities",
    "lexicon_version",
]
