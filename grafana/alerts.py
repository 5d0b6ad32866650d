"""Grafana-managed alert rules, the clipper's contact point and the notification policy.

The file format is Grafana's alerting provisioning ([GRAFANA], "Alerting provisioning").  Each
rule is query ``A`` (SQL or PromQL) -> ``B`` reduce (last, drop non-numbers) -> ``C``
threshold, with ``C`` the condition.  SQL alert queries are in table format and return one row
per channel: a text column ``channel`` (it becomes the alert's ``channel`` label, which the
clipper reads) and exactly one numeric column; they never name a column ``metric`` and never
use ``$__interval`` (1 s in alert rules): their windows are explicit.  The query's time range is
``relativeTimeRange`` and the SQL reads it through ``$__timeFrom()``/``$__timeTo()``, so the
tests can evaluate a rule over any past range of real chat.

Every rule carries ``summary``, ``description`` and ``runbook`` annotations.  NoData and error
states are chosen per rule (see each rule's comment).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from grafana.dashboards import DASHBOARDS
from grafana.panels import DS_POSTGRES, DS_PROMETHEUS

__all__ = [
    "CLIPPER_RECEIVER",
    "CONTACT_POINT_UID",
    "FOLDER",
    "HMAC_HEADER",
    "WEBHOOK_URL",
    "AlertRule",
    "alert_rules",
    "alerting_files",
    "contact_points",
    "policies",
]

FOLDER = "chatpulse"
CLIPPER_RECEIVER = "chatpulse-clipper"
CONTACT_POINT_UID = "chatpulse-clipper"
DEFAULT_RECEIVER = "grafana-default-email"
WEBHOOK_URL = "http://clipper:8095/webhooks/grafana"
HMAC_HEADER = "X-Grafana-Alerting-Signature"
TIMESTAMP_HEADER = "X-Grafana-Alerting-Timestamp"
# Provisioning files expand $__env{...} when Grafana reads them: the secrets stay out of the
# repository and are the clipper's own settings (CHATPULSE_WEBHOOK_TOKEN / _HMAC_SECRET).
TOKEN_REF = "$__env{CHATPULSE_WEBHOOK_TOKEN}"
HMAC_REF = "$__env{CHATPULSE_WEBHOOK_HMAC_SECRET}"

NoData = Literal["NoData", "Alerting", "OK", "KeepLast"]
ExecErr = Literal["Error", "Alerting", "OK", "KeepLast"]


@dataclass(frozen=True)
class AlertRule:
    """One rule: query ``expr`` (SQL on ``chatpulse`` or PromQL on ``prometheus``), reduced
    with ``reducer``, firing when the result is ``op`` (``gt``/``lt``) ``threshold``."""

    uid: str
    title: str
    group: str
    expr: str
    kind: Literal["sql", "prometheus"]
    op: Literal["gt", "lt"]
    threshold: float
    window_s: int
    for_: str
    no_data: NoData
    exec_err: ExecErr
    summary: str
    description: str
    runbook: str
    labels: dict[str, str]
    #: (dashboard name, panel title) the rule links to.
    panel: tuple[str, str] | None = None
    reducer: str = "last"

    def query_model(self) -> dict[str, Any]:
        """The ``model`` of query ``A`` (what the panel target would hold)."""
        if self.kind == "sql":
            return {
                "refId": "A",
                "datasource": dict(DS_POSTGRES),
                "editorMode": "code",
                "format": "table",
                "rawQuery": True,
                "rawSql": self.expr.strip(),
                "intervalMs": 1000,
                "maxDataPoints": 43200,
            }
        return {
            "refId": "A",
            "datasource": dict(DS_PROMETHEUS),
            "editorMode": "code",
            "expr": self.expr.strip(),
            "instant": True,
            "range": False,
            "legendFormat": "__auto",
            "intervalMs": 1000,
            "maxDataPoints": 43200,
        }

    def to_provisioning(self) -> dict[str, Any]:
        """The rule as a ``groups[].rules[]`` entry of an alerting provisioning file."""
        ds_uid = DS_POSTGRES["uid"] if self.kind == "sql" else DS_PROMETHEUS["uid"]
        expr_ds = {"type": "__expr__", "uid": "__expr__"}
        rule: dict[str, Any] = {
            "uid": self.uid,
            "title": self.title,
            "condition": "C",
            "data": [
                {
                    "refId": "A",
                    "relativeTimeRange": {"from": self.window_s, "to": 0},
                    "datasourceUid": ds_uid,
                    "model": self.query_model(),
                },
                {
                    "refId": "B",
                    "relativeTimeRange": {"from": 0, "to": 0},
                    "datasourceUid": "__expr__",
                    "model": {
                        "refId": "B",
                        "datasource": expr_ds,
                        "type": "reduce",
                        "expression": "A",
                        "reducer": self.reducer,
                        "settings": {"mode": "dropNN"},
                    },
                },
                {
                    "refId": "C",
                    "relativeTimeRange": {"from": 0, "to": 0},
                    "datasourceUid": "__expr__",
                    "model": {
                        "refId": "C",
                        "datasource": expr_ds,
                        "type": "threshold",
                        "expression": "B",
                        "conditions": [
                            {"evaluator": {"type": self.op, "params": [self.threshold]}}
                        ],
                    },
                },
            ],
            "noDataState": self.no_data,
            "execErrState": self.exec_err,
            "for": self.for_,
            "isPaused": False,
            "labels": dict(self.labels),
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook": self.runbook,
            },
        }
        if self.panel is not None:
            rule["dashboardUid"], rule["panelId"] = _panel_ref(*self.panel)
        return rule


def _panel_ref(dashboard_name: str, title: str) -> tuple[str, int]:
    board = DASHBOARDS[dashboard_name]()
    for panel in board["panels"]:
        if panel["title"] == title:
            return str(board["uid"]), int(panel["id"])
    raise KeyError(f"no panel {title!r} on dashboard {dashboard_name!r}")


# -- SQL rules ----------------------------------------------------------------------------------
# Every SQL rule starts FROM chat.channels and LEFT JOINs its measure, so each channel yields
# a row (label sets stay unique) whether or not it had activity: "no hype" is a 0, not
# NoData.  NoData then only means "no channels at all", which is not worth a page (OK).

_HYPE_SQL = """
SELECT c.name AS channel, coalesce(h.id::text, '') AS hype_moment,
       coalesce(h.score, 0)::float8 AS hype_score
FROM chat.channels c
LEFT JOIN chat.hype_moments h
  ON h.channel_id = c.id
 AND (h.peak_at BETWEEN $__timeFrom() AND $__timeTo()
      OR h.detected_at BETWEEN $__timeFrom() AND $__timeTo())
"""

# The last 10 minutes against the channel's own 24 hours before them, in standard deviations
# of its per-minute sentiment; only minutes with at least 5 scored messages count, and the
# recent window needs 30 scored messages, so a quiet channel cannot "crash" on three messages.
_SENTIMENT_SQL = """
WITH minutes AS (
  SELECT s.channel_id, s.bucket, sum(s.avg_sentiment * s.scored) / sum(s.scored) AS sentiment,
         sum(s.scored) AS scored
  FROM chat.sentiment_1m s
  WHERE s.bucket >= $__timeFrom() AND s.bucket < $__timeTo() AND s.scored > 0
  GROUP BY 1, 2
), split AS (
  SELECT channel_id,
         sum(sentiment * scored) FILTER (WHERE bucket >= $__timeTo()::timestamptz - INTERVAL '10 minutes')
           / nullif(sum(scored) FILTER (WHERE bucket >= $__timeTo()::timestamptz - INTERVAL '10 minutes'), 0) AS recent,
         sum(scored) FILTER (WHERE bucket >= $__timeTo()::timestamptz - INTERVAL '10 minutes') AS recent_scored,
         avg(sentiment) FILTER (WHERE bucket < $__timeTo()::timestamptz - INTERVAL '10 minutes' AND scored >= 5) AS base,
         stddev_samp(sentiment) FILTER (WHERE bucket < $__timeTo()::timestamptz - INTERVAL '10 minutes' AND scored >= 5) AS spread
  FROM minutes
  GROUP BY 1
)
SELECT c.name AS channel,
       coalesce(CASE WHEN sp.recent_scored >= 30 AND sp.spread > 0
                     THEN (sp.recent - sp.base) / sp.spread END, 0)::float8 AS sentiment_z
FROM chat.channels c
LEFT JOIN split sp ON sp.channel_id = c.id
"""

# Share of toxic messages in the last 10 minutes over the channel's share in the 24 hours
# before (floored at 1 %, so a channel that is never toxic needs 3 % toxic messages to fire),
# with at least 30 scored messages recently.
_TOXICITY_SQL = """
WITH split AS (
  SELECT s.channel_id,
         sum(s.toxic) FILTER (WHERE s.bucket >= $__timeTo()::timestamptz - INTERVAL '10 minutes') AS recent_toxic,
         sum(s.scored) FILTER (WHERE s.bucket >= $__timeTo()::timestamptz - INTERVAL '10 minutes') AS recent_scored,
         sum(s.toxic) FILTER (WHERE s.bucket < $__timeTo()::timestamptz - INTERVAL '10 minutes') AS base_toxic,
         sum(s.scored) FILTER (WHERE s.bucket < $__timeTo()::timestamptz - INTERVAL '10 minutes') AS base_scored
  FROM chat.sentiment_1m s
  WHERE s.bucket >= $__timeFrom() AND s.bucket < $__timeTo()
  GROUP BY 1
)
SELECT c.name AS channel,
       coalesce(CASE WHEN sp.recent_scored >= 30
                     THEN (sp.recent_toxic::float8 / sp.recent_scored)
                          / greatest(coalesce(sp.base_toxic::float8 / nullif(sp.base_scored, 0), 0), 0.01)
                END, 0)::float8 AS toxicity_ratio
FROM chat.channels c
LEFT JOIN split sp ON sp.channel_id = c.id
"""

# "Live" = the channel averaged at least 5 messages a minute over the 30 minutes before the
# last 5; silent = nothing in the last 5 minutes.  Only live channels are returned, so a
# channel that is offline never fires; the value is the messages of the last 5 minutes.
_SILENT_SQL = """
WITH activity AS (
  SELECT a.channel_id,
         sum(a.messages) FILTER (WHERE a.bucket < $__timeTo()::timestamptz - INTERVAL '5 minutes') AS before,
         coalesce(sum(a.messages) FILTER (WHERE a.bucket >= $__timeTo()::timestamptz - INTERVAL '5 minutes'), 0) AS recent
  FROM chat.activity_1m a
  WHERE a.bucket >= $__timeFrom() AND a.bucket < $__timeTo()
  GROUP BY 1
)
SELECT c.name AS channel, a.recent::float8 AS messages_last_5m
FROM chat.channels c
JOIN activity a ON a.channel_id = c.id
WHERE a.before >= 5 * 30
"""

# Toxic messages of the 10 minutes before the last 2 (moderators get 2 minutes), per channel:
# the ones no action answered by now, when moderation answered under a quarter of them.
_TOXIC_UNANSWERED_SQL = """
WITH recent AS (
  SELECT t.channel_id, count(*) AS toxic,
         count(*) FILTER (WHERE t.acted_at <= $__timeTo()::timestamptz) AS acted
  FROM chat.toxic_messages t
  WHERE t.sent_at >= $__timeTo()::timestamptz - INTERVAL '10 minutes'
    AND t.sent_at < $__timeTo()::timestamptz - INTERVAL '2 minutes'
  GROUP BY 1
)
SELECT c.name AS channel,
       coalesce(CASE WHEN r.acted::float8 / r.toxic < 0.25 THEN r.toxic - r.acted END, 0)::float8
         AS unanswered_toxic
FROM chat.channels c
LEFT JOIN recent r ON r.channel_id = c.id
"""

# The highest forecast probability of the last 30 s per channel, among hops the forecast
# called likely (probability >= its threshold); 0 when none (or no forecast: no model yet).
_HYPE_LIKELY_SQL = """
SELECT c.name AS channel,
       coalesce(max(f.probability) FILTER (WHERE f.likely), 0)::float8 AS hype_probability
FROM chat.channels c
LEFT JOIN chat.hype_forecasts f
  ON f.channel_id = c.id AND f.at > $__timeTo()::timestamptz - INTERVAL '30 seconds'
 AND f.at <= $__timeTo()
GROUP BY c.id, c.name
"""

_RUNBOOK = "https://github.com/chatpulse/chatpulse/blob/main/docs/runbook.md"


def alert_rules() -> list[AlertRule]:
    """Every alert rule, in file order."""
    return [
        AlertRule(
            uid="chatpulse-hype-moment",
            title="Hype moment",
            group="chatpulse-hype",
            expr=_HYPE_SQL,
            kind="sql",
            op="gt",
            threshold=0,
            # Each moment is its own alert instance (label hype_moment), so two moments in one
            # channel give two clips; a moment stays firing for the 10-minute window.
            window_s=600,
            # A hype moment is already detected against the channel's baseline: fire at once.
            for_="0s",
            # One row per channel always; NoData means no channels, nothing to clip.
            no_data="OK",
            # A failing query must be seen (DatasourceError goes to the default receiver).
            exec_err="Error",
            summary="Hype in {{ $labels.channel }}: score {{ humanize $values.B.Value }}",
            description="The detector found a hype moment in {{ $labels.channel }}: chat runs far "
            "above its own baseline. The clipper cuts a highlight around its peak.",
            runbook="Nothing to do: the clipper receives this alert and queues a clip "
            "(see the Pipeline health dashboard, Recent clip jobs). If no clip appears, check "
            "`chatpulse clipper worker` logs and that CHATPULSE_WEBHOOK_TOKEN and "
            "CHATPULSE_WEBHOOK_HMAC_SECRET are the same for Grafana and the clipper.",
            labels={"chatpulse": "hype", "severity": "info"},
            panel=("overview", "Hype score"),
        ),
        AlertRule(
            uid="chatpulse-hype-likely",
            title="Hype likely",
            group="chatpulse-hype",
            expr=_HYPE_LIKELY_SQL,
            kind="sql",
            op="gt",
            threshold=0,
            window_s=60,
            # A forecast is for the next minute: it is worth something only at once.
            for_="0s",
            no_data="OK",
            exec_err="Error",
            summary="Hype likely in {{ $labels.channel }} within a minute: "
            "probability {{ humanizePercentage $values.B.Value }}",
            description="The hype forecast (chatpulse forecast, trained on the channel's own "
            "detected moments) expects a hype moment in {{ $labels.channel }} to peak within "
            "the next minute. Start recording or clipping early.",
            runbook="Nothing to do by itself: make sure `chatpulse record` runs for the channel "
            "so that the moment is on disk. Its own label (chatpulse=forecast) keeps it off the "
            "clipper's route; route it there to cut clips from the forecast.",
            labels={"chatpulse": "forecast", "severity": "info"},
            panel=("forecast", "Hype probability"),
        ),
        AlertRule(
            uid="chatpulse-sentiment-crash",
            title="Sentiment crash",
            group="chatpulse-chat",
            expr=_SENTIMENT_SQL,
            kind="sql",
            op="lt",
            threshold=-2.5,
            window_s=86400,
            for_="5m",
            no_data="OK",
            exec_err="Error",
            summary="Sentiment in {{ $labels.channel }} fell "
            "{{ humanize $values.B.Value }} standard deviations below its baseline",
            description="Over the last 10 minutes the mean sentiment of {{ $labels.channel }} is far "
            "below the channel's own previous 24 hours.",
            runbook="Open Sentiment & emotions for the channel and read the most negative "
            "messages of the last 15 minutes; check Moderation & toxicity for a raid or a "
            "harassment wave. If the scorer model changed, compare within one model only.",
            labels={"chatpulse": "chat", "severity": "warning"},
            panel=("sentiment", "Average sentiment per channel"),
        ),
        AlertRule(
            uid="chatpulse-toxicity-surge",
            title="Toxicity surge",
            group="chatpulse-chat",
            expr=_TOXICITY_SQL,
            kind="sql",
            op="gt",
            threshold=3,
            window_s=86400,
            for_="3m",
            no_data="OK",
            exec_err="Error",
            summary="Toxic messages in {{ $labels.channel }} at "
            "{{ humanize $values.B.Value }}x the usual share",
            description="The share of toxic messages (toxicity >= 0.5) in the last 10 minutes is "
            "more than three times the channel's share over the previous 24 hours.",
            runbook="Tell the channel's moderators; open Moderation & toxicity (Top flagged "
            "messages) to see who and what. Consider follower-only or slow mode.",
            labels={"chatpulse": "chat", "severity": "critical"},
            panel=("moderation", "Moderation actions against toxicity"),
        ),
        AlertRule(
            uid="chatpulse-toxic-unanswered",
            title="Toxic surge not answered by moderation",
            group="chatpulse-chat",
            expr=_TOXIC_UNANSWERED_SQL,
            kind="sql",
            op="gt",
            threshold=4,
            window_s=900,
            for_="1m",
            no_data="OK",
            exec_err="Error",
            summary="{{ humanize $values.B.Value }} toxic messages in {{ $labels.channel }} "
            "with no moderation action",
            description="Five or more toxic messages (toxicity >= 0.5) between 10 and 2 minutes "
            "ago, and moderators deleted, timed out or banned for under a quarter of them.",
            runbook="Tell the channel's moderators; open Moderation & toxicity: response "
            "(Never acted on) to see who and what. Consider slow or follower-only mode.",
            labels={"chatpulse": "chat", "severity": "critical"},
            panel=("moderation_response", "Toxic messages against actions"),
        ),
        AlertRule(
            uid="chatpulse-chat-silent",
            title="Chat went silent while live",
            group="chatpulse-chat",
            expr=_SILENT_SQL,
            kind="sql",
            op="lt",
            threshold=1,
            window_s=2100,
            for_="2m",
            # Only live channels are returned; none live is the normal offline state.
            no_data="OK",
            exec_err="Error",
            summary="No messages from {{ $labels.channel }} for 5 minutes while it was live",
            description="{{ $labels.channel }} averaged at least 5 messages a minute for half an "
            "hour, then nothing for 5 minutes: the collector may be disconnected or banned, or "
            "the stream ended abruptly.",
            runbook="Check Pipeline health (connection, reconnects, gaps) and `chatpulse "
            "doctor`; look at the collector logs for the channel. If the stream simply ended, "
            "nothing to do.",
            labels={"chatpulse": "chat", "severity": "warning"},
            panel=("overview", "Messages per minute"),
        ),
        AlertRule(
            uid="chatpulse-ingest-stalled",
            title="Ingest stalled or spool growing",
            group="chatpulse-pipeline",
            # Recording rule (prometheus/rules): 1 when messages arrive but none reach the
            # database, or the oldest spooled batch is over 5 minutes old.  `or vector(0)`:
            # no collector scraped is not an ingest stall (Prometheus' own up==0 alert covers
            # a dead target), so the rule never sits in NoData.
            expr="max(chatpulse:ingest_problem) or vector(0)",
            kind="prometheus",
            op="gt",
            threshold=0,
            window_s=600,
            for_="5m",
            no_data="OK",
            exec_err="Error",
            summary="Chat messages are not reaching the database",
            description="The collector receives messages but writes none, or its on-disk spool "
            "holds batches older than 5 minutes: the database is unreachable or too slow.",
            runbook="Check chatpulse_database_up and the collector logs; run `chatpulse doctor`. "
            "Nothing is lost while the spool has room (CHATPULSE_SPOOL_MAX_BYTES); when the "
            "database returns, the spool replays in order.",
            labels={"chatpulse": "pipeline", "severity": "critical"},
            panel=("pipeline", "Ingest rate"),
        ),
        AlertRule(
            uid="chatpulse-scorer-lagging",
            title="Scorer lagging",
            group="chatpulse-pipeline",
            expr="max(chatpulse:scorer_lag_seconds:max) or vector(0)",
            kind="prometheus",
            op="gt",
            threshold=300,
            window_s=600,
            for_="10m",
            no_data="OK",
            exec_err="Error",
            summary="The scorer is {{ humanizeDuration $values.B.Value }} behind chat",
            description="Sentiment, emotion and toxicity panels and the chat alert rules run on "
            "stale data while the scorer lags.",
            runbook="Check the scorer's logs and throughput (Pipeline health, Scorer); add "
            "scorer workers (`chatpulse score` scales across processes) or use the onnx "
            "backend.",
            labels={"chatpulse": "pipeline", "severity": "warning"},
            panel=("pipeline", "Scorer"),
        ),
    ]


_GROUP_INTERVALS = {"chatpulse-hype": "30s", "chatpulse-chat": "1m", "chatpulse-pipeline": "1m"}


def _groups() -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for rule in alert_rules():
        groups.setdefault(rule.group, []).append(rule.to_provisioning())
    return [
        {
            "orgId": 1,
            "name": name,
            "folder": FOLDER,
            "interval": _GROUP_INTERVALS[name],
            "rules": rules,
        }
        for name, rules in groups.items()
    ]


def contact_points() -> list[dict[str, Any]]:
    """The clipper's webhook: bearer token and HMAC secret from Grafana's environment."""
    return [
        {
            "orgId": 1,
            "name": CLIPPER_RECEIVER,
            "receivers": [
                {
                    "uid": CONTACT_POINT_UID,
                    "type": "webhook",
                    "disableResolveMessage": True,
                    "settings": {
                        "url": WEBHOOK_URL,
                        "httpMethod": "POST",
                        "maxAlerts": 0,
                        "authorization_scheme": "Bearer",
                        "authorization_credentials": TOKEN_REF,
                        # Lowercase hex HMAC-SHA256 of "<unix seconds>:" + raw body, Grafana
                        # 12+.  The timestamp is signed so that a captured request cannot be
                        # replayed later (the clipper refuses a signature without one by
                        # default).  The header is set explicitly because the documented and
                        # the coded defaults differ.
                        "hmacConfig": {
                            "secret": HMAC_REF,
                            "header": HMAC_HEADER,
                            "timestampHeader": TIMESTAMP_HEADER,
                        },
                    },
                }
            ],
        }
    ]


def policies() -> list[dict[str, Any]]:
    """The notification policy tree: hype alerts to the clipper, one group per channel."""
    return [
        {
            "orgId": 1,
            "receiver": DEFAULT_RECEIVER,
            "group_by": ["grafana_folder", "alertname"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
            "routes": [
                {
                    "receiver": CLIPPER_RECEIVER,
                    "object_matchers": [["chatpulse", "=", "hype"]],
                    "group_by": ["alertname", "channel"],
                    # A clip should start soon after the peak; a repeat of the same firing
                    # alert carries the same startsAt, which the clipper de-duplicates.
                    "group_wait": "5s",
                    "group_interval": "1m",
                    "repeat_interval": "4h",
                    "continue": False,
                }
            ],
        }
    ]


def alerting_files() -> dict[str, dict[str, Any]]:
    """The alerting provisioning documents, keyed by file name."""
    return {
        "rules.yaml": {"apiVersion": 1, "groups": _groups()},
        "contact-points.yaml": {"apiVersion": 1, "contactPoints": contact_points()},
        "policies.yaml": {"apiVersion": 1, "policies": policies()},
    }
