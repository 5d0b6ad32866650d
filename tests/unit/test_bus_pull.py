"""The bus writer's reading of JetStream ack subjects (no server: literal subjects)."""

from __future__ import annotations

import pytest

from bus.pull import delivery_count


@pytest.mark.parametrize(
    ("reply", "delivered"),
    [
        # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
        ("$JS.ACK.CHATPULSE.CHATPULSE-writers.1.17.12.1704557984095000000.3", 1),
        ("$JS.ACK.CHATPULSE.CHATPULSE-writers.3.17.40.1704557984095000000.0", 3),
        # with domain and account hash: $JS.ACK.<domain>.<hash>.<stream>.<consumer>.<delivered>...
        ("$JS.ACK._.ACCHASH.CHATPULSE.w.2.17.12.1704557984095000000.3.r4nd0m", 2),
        ("$JS.ACK.hub.ACCHASH.CHATPULSE.w.5.17.12.1704557984095000000.3", 5),
    ],
)
def test_delivery_count_reads_both_ack_subject_forms(reply: str, delivered: int) -> None:
    assert delivery_count(reply) == delivered


@pytest.mark.parametrize(
    "reply",
    ["", "_INBOX.abc.def", "$JS.ACK.too.short", "$JS.ACK.S.C.x.17.12.1704557984095000000.3"],
)
def test_a_subject_that_is_no_ack_subject_counts_as_not_delivered(reply: str) -> None:
    assert delivery_count(reply) == 0
