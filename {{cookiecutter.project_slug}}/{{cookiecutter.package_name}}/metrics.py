"""Prometheus metrics, through prometheus_client, served at /metrics.

Under gunicorn each worker is a process of its own. gunicorn.conf.py points
PROMETHEUS_MULTIPROC_DIR at an emptied folder before any worker starts, so
prometheus_client's multiprocess mode writes each process's values there and a
scrape, whichever worker answers it, adds them all up. Redis bot workers run
elsewhere (other machines, containers): `flask spectrum worker --metrics-port N`
serves each one's own, and Prometheus adds those up.

The inbox's depth is asked of the inbox at each scrape, so it is right however
many processes there are.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

from .inbox.contract import Inbox, InboxUnavailable

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

# Answers take milliseconds; Spectrum gives up on an attempt at 30 s.
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
HANDLING_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

DELIVERIES = Counter(
    "spectrum_deliveries",
    "Webhook deliveries by outcome (accepted, duplicate, ignored, refused, unavailable, "
    "unconfigured) and, when refused, why (headers, timestamp, signature, too_large, body).",
    ["outcome", "reason"],
)
ACK_SECONDS = Histogram(
    "spectrum_ack_seconds",
    "Time from a delivery's arrival to the app's answer.",
    buckets=ACK_BUCKETS,
)
HANDLED = Counter(
    "spectrum_messages_handled",
    "Messages the bot finished with (done), failed on and will retry (retried), parked, "
    "or put back while a dependency is down (waiting).",
    ["outcome"],
)
HANDLING_SECONDS = Histogram(
    "spectrum_handling_seconds",
    "Time to carry a message through: the bot's handler and sending its replies.",
    buckets=HANDLING_BUCKETS,
)
REPLY_FAILURES = Counter(
    "spectrum_reply_failures",
    "Replies not sent: refused by the platform, failed, or the bridge unavailable.",
    ["reason"],
)
BRIDGE_RESTARTS = Counter(
    "spectrum_bridge_restarts", "Node bridge processes replaced after they died or went silent."
)


class InboxCollector(Collector):
    """The inbox's counts by state, read at scrape time."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("spectrum_inbox_up", "1 if the inbox answered this scrape.")
        try:
            counts = self.inbox.counts()
        except InboxUnavailable:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        family = GaugeMetricFamily(
            "spectrum_inbox_messages",
            "Messages in the inbox by state: pending (waiting for the bot, retries "
            "included), working, parked (failed for good, waiting for a replay).",
            labels=["state"],
        )
        for state, count in counts.items():
            family.add_metric([state], count)
        yield family


def exposition(inbox: Inbox) -> bytes:
    """The text a scrape gets: every process's metrics, and the inbox's counts."""
    registry = CollectorRegistry(auto_describe=True)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        own = b""
    else:
        own = generate_latest(REGISTRY)
    registry.register(InboxCollector(inbox))
    return own + generate_latest(registry)
