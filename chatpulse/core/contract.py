"""The data contract's constants: names that the schema, the services and the dashboards share.

The tables and columns of schema ``chat`` are a public API (README, "SQL contract"): extend,
never rename.  The lists here are written out in SQL too (the migrations that create those
columns), and tests check both agree.  Services and the Grafana generator import them from
here, never from each other.
"""

from __future__ import annotations

__all__ = [
    "EMOTIONS",
    "READER_RELATIONS",
    "READER_ROLE",
    "READER_VECTOR_RELATIONS",
    "SUBSCRIPTION_KINDS",
]

#: The emotion columns of ``chat.message_scores``, in column order.  They are the label set of
#: CardiffNLP's multilabel emotion model (twitter-roberta-base-emotion-multilabel-latest, from
#: SemEval-2018 Task 1 E-c), so that the transformers backend fills them all.
EMOTIONS: tuple[str, ...] = (
    "anger",
    "anticipation",
    "disgust",
    "fear",
    "joy",
    "love",
    "optimism",
    "pessimism",
    "sadness",
    "surprise",
    "trust",
)

#: ``chat.messages.kind`` values that the aggregates' ``subs`` column counts (one per notice,
#: as the platform sends them: a mystery gift of five is one ``submysterygift`` and five
#: ``subgift``).  The same list is written out in sql/0012_chatter_key.*.sql.
SUBSCRIPTION_KINDS = (
    "sub",
    "resub",
    "extendsub",
    "subgift",
    "anonsubgift",
    "submysterygift",
    "anonsubmysterygift",
    "giftpaidupgrade",
    "anongiftpaidupgrade",
    "primepaidupgrade",
    "membership",
    "membership_gift",
    "membership_gift_received",
)

#: The read-only role Grafana connects as (created by the migration runner).
READER_ROLE = "chatpulse_reader"
#: What ``chatpulse_reader`` may read: the relations of README's SQL contract, nothing else
#: (not detector state, scorer claims, invalidation logs, migrations or tombstones).  A new
#: contract relation goes into README's table and here (tests check both agree).
READER_RELATIONS = (
    "channels",
    "messages",
    "emote_uses",
    "moderation_events",
    "gaps",
    "message_scores",
    "activity_1m",
    "activity_1h",
    "chatters_1m",
    "chatters_1h",
    "chatters_6h",
    "chatters_1d",
    "sentiment_1m",
    "emotes_10s",
    "emotes_1m",
    "emote_bursts",
    "hype_moments",
    "clips",
    "toxic_messages",
    "moderation_1m",
    "moderation_streams",
    "streams",
    "stream_chatters",
    "stream_shape",
    "stream_emotes",
    "stream_segments",
    "channel_segments",
    "channel_shape",
    "chatter_segments",
    "hype_forecasts",
    "chatter_clusters",
    "chatter_cluster_members",
    "window_terms",
    "topics",
    "window_topics",
    "text_embeddings",
    "window_embeddings",
)
#: Contract relations that exist only where pgvector is available (``chat.enable_vectors()``).
READER_VECTOR_RELATIONS = ("text_embeddings", "window_embeddings")
