"""The "Pipeline health" dashboard: the stack's own metrics (Prometheus) and its gaps and
clip jobs (SQL).
"""

from __future__ import annotations

from typing import Any

from grafana.dashboards.common import (
    CLIP_ANNOTATION,
    GAP_ANNOTATION,
    basic_timeseries,
    table,
)
from grafana.panels import channel_variable, dashboard, prom

__all__ = ["UID", "pipeline"]

UID = "chatpulse-pipeline"


_CH = 'channel=~"${channel:regex}"'


def pipeline() -> dict[str, Any]:
    row1 = [
        basic_timeseries(
            "Ingest rate",
            [
                prom(
                    f"sum by (channel) (rate(chatpulse_messages_received_total{{{_CH}}}[$__rate_interval]))",
                    "received {{channel}}",
                ),
                prom(
                    f"sum by (channel) (rate(chatpulse_messages_written_total{{{_CH}}}[$__rate_interval]))",
                    "written {{channel}}",
                    "B",
                ),
            ],
            unit="reqps",
            width=12,
            description="Messages per second received from sources and newly written.",
        ),
        basic_timeseries(
            "Duplicates and malformed lines",
            [
                prom(
                    f"sum by (source) (rate(chatpulse_messages_duplicate_total{{{_CH}}}[$__rate_interval]))",
                    "duplicate {{source}}",
                ),
                prom(
                    "sum by (source) (rate(chatpulse_messages_malformed_total[$__rate_interval]))",
                    "malformed {{source}}",
                    "B",
                ),
            ],
            unit="reqps",
            width=12,
            description="Duplicates are expected after reconnects and replays (dropped by the "
            "unique key); malformed lines go to the dead-letter file.",
        ),
    ]
    row2 = [
        basic_timeseries(
            "Connection and database",
            [
                prom("chatpulse_connection_up", "connected {{source}}"),
                prom("chatpulse_database_up", "database {{instance}}", "B"),
            ],
            description="1 while connected to chat / while the writer reaches the database.",
        ),
        basic_timeseries(
            "Reconnects and gaps",
            [
                prom(
                    "sum by (source) (increase(chatpulse_reconnects_total[$__rate_interval]))",
                    "reconnects {{source}}",
                ),
                prom(
                    f"sum by (channel) (increase(chatpulse_gaps_total{{{_CH}}}[$__rate_interval]))",
                    "gaps {{channel}}",
                    "B",
                ),
            ],
            draw="bars",
            description="Reconnects of live sources and gaps recorded in chat.gaps.",
        ),
        basic_timeseries(
            "Spool",
            [
                prom("sum(chatpulse_spool_bytes)", "spool bytes"),
                prom("max(chatpulse_spool_oldest_age_seconds)", "oldest batch age (s)", "B"),
            ],
            unit="bytes",
            description="Batches kept on disk while the database is unreachable.",
        ),
    ]
    row3 = [
        basic_timeseries(
            "Write latency and ingest delay (p95)",
            [
                prom(
                    "histogram_quantile(0.95, sum by (le) "
                    "(rate(chatpulse_write_latency_seconds_bucket[$__rate_interval])))",
                    "write latency p95",
                ),
                prom(
                    "histogram_quantile(0.95, sum by (le) "
                    "(rate(chatpulse_ingest_delay_seconds_bucket[$__rate_interval])))",
                    "ingest delay p95",
                    "B",
                ),
            ],
            unit="s",
        ),
        basic_timeseries(
            "Scorer",
            [
                prom("max(chatpulse_scorer_lag_seconds)", "lag (s)"),
                prom(
                    "sum by (model) (rate(chatpulse_messages_scored_total[$__rate_interval]))",
                    "scored/s {{model}}",
                    "B",
                ),
            ],
            description="Seconds the scorer is behind the newest message, and its throughput.",
        ),
        basic_timeseries(
            "Clip jobs",
            [prom("sum by (status) (chatpulse_clips)", "{{status}}")],
            description="Clip jobs by status, as the clipper reports them.",
        ),
    ]
    bus = [
        basic_timeseries(
            "Bus publish rate",
            [
                prom(
                    f"sum by (channel) (rate(chatpulse_bus_published_total{{{_CH}}}[$__rate_interval]))",
                    "published {{channel}}",
                ),
                prom(
                    "sum(rate(chatpulse_bus_consumed_total[$__rate_interval]))",
                    "written and acked",
                    "B",
                ),
            ],
            unit="reqps",
            width=6,
            description="Events the collectors published to the NATS JetStream stream, and "
            "stream messages the bus writers committed and acknowledged (--sink nats only).",
        ),
        basic_timeseries(
            "Bus consumer lag",
            [
                prom("max(chatpulse_bus_consumer_pending)", "not yet delivered"),
                prom("max(chatpulse_bus_consumer_ack_pending)", "delivered, unacked", "B"),
            ],
            width=6,
            description="Messages the writers' consumer has not delivered yet (the lag; it grows "
            "while the database is down and the stream holds the backlog) and messages "
            "delivered but not yet acknowledged.",
        ),
        basic_timeseries(
            "Bus redeliveries and poison",
            [
                prom(
                    "sum(increase(chatpulse_bus_redelivered_total[$__rate_interval]))",
                    "redelivered",
                ),
                prom(
                    "sum(increase(chatpulse_bus_poison_total[$__rate_interval]))",
                    "poison (dead-lettered)",
                    "B",
                ),
                prom(
                    "sum(increase(chatpulse_bus_publish_retries_total[$__rate_interval]))",
                    "publish retries",
                    "C",
                ),
            ],
            draw="bars",
            width=6,
            description="Redelivered messages (a writer died or was slow), undecodable ones "
            "and publish batches retried.",
        ),
        basic_timeseries(
            "Channel leases",
            [
                prom("sum by (collector) (chatpulse_bus_leases_owned)", "owned by {{collector}}"),
                prom("max(chatpulse_bus_orphaned_channels)", "orphaned", "B"),
                prom("max(chatpulse_bus_channels)", "in the shared list", "C"),
                prom(
                    "sum(increase(chatpulse_bus_takeovers_total[$__rate_interval]))",
                    "taken over",
                    "D",
                ),
            ],
            width=6,
            description="Channels each collector holds a lease on, channels of the shared list "
            "nobody holds (orphaned), and takeovers after a collector died.",
        ),
    ]
    gaps = table(
        "Recent gaps",
        """
SELECT g.started_at AS "time", c.name AS channel, g.ended_at, g.reason, g.filled_at,
       g.recovered, g.collector
FROM chat.gaps g
JOIN chat.channels c ON c.id = g.channel_id
WHERE g.started_at <= $__timeTo() AND coalesce(g.ended_at, now()) >= $__timeFrom()
  AND c.name IN (${channel:sqlstring})
ORDER BY g.started_at DESC
LIMIT 100
""",
        width=12,
        height=8,
        description="Disconnects of live sources and what gap fill brought back.",
    )
    clips = table(
        "Recent clip jobs",
        """
SELECT cl.requested_at AS "time", c.name AS channel, cl.trigger, cl.status, cl.attempts,
       cl.start_at, cl.end_at, cl.duration_s, cl.location, cl.error
FROM chat.clips cl
LEFT JOIN chat.channels c ON c.id = cl.channel_id
WHERE $__timeFilter(cl.requested_at) AND (c.name IN (${channel:sqlstring}) OR cl.channel_id IS NULL)
ORDER BY cl.requested_at DESC
LIMIT 100
""",
        width=12,
        height=8,
        description="Clip jobs requested in the range (alerts, manual, hype).",
    )
    return dashboard(
        uid=UID,
        title="chatpulse / Pipeline health",
        description="The stack's own health: ingest, duplicates, malformed lines, reconnects, "
        "gaps, spool, scorer lag, clip jobs and the NATS bus.",
        rows=[row1, row2, row3, bus, [gaps, clips]],
        variables=[channel_variable()],
        annotations=[GAP_ANNOTATION, CLIP_ANNOTATION],
        refresh="30s",
    )
