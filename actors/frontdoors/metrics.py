"""Prometheus text exposition of the pipeline's status map (the gateway's ``/metrics``).

:func:`render` turns the supervisor's latest status map (published on topic ``status``
every second) plus the gateway's own counters into the Prometheus text format through
``prometheus_client``'s custom-collector API, so nothing is re-registered per scrape.
Latencies are gauges (``streamasr_latency_seconds{series, quantile}``), as the status map
carries percentiles over a sliding window, not raw observations.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

#: Content type of the text exposition format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _actor_metrics(status: Mapping[str, Any]) -> Iterator[Any]:
    restarts = CounterMetricFamily(
        "streamasr_actor_restarts", "Restarts per actor", labels=["actor"]
    )
    up = GaugeMetricFamily("streamasr_actor_up", "1 if the actor is running", labels=["actor"])
    chunk = GaugeMetricFamily("streamasr_chunk_ms", "Current chunk size (ms)", labels=["actor"])
    rss = GaugeMetricFamily("streamasr_actor_rss_bytes", "Resident memory", labels=["actor"])
    counters = CounterMetricFamily(
        "streamasr_actor_events",
        "Actor counters (rejected inputs by reason, ...)",
        labels=["actor", "counter"],
    )
    for a in status.get("actors", []):
        aid = str(a.get("id", ""))
        restarts.add_metric([aid], float(a.get("restarts", 0)))
        up.add_metric([aid], 1.0 if a.get("state") == "running" else 0.0)
        if a.get("chunk_ms") is not None:  # only actors that work on a fixed chunk
            chunk.add_metric([aid], float(a["chunk_ms"]))
        rss.add_metric([aid], float(a.get("rss_bytes", 0)))
        for key, value in sorted(dict(a.get("counters", {})).items()):
            counters.add_metric([aid, str(key)], float(value))
    yield from (restarts, up, chunk, rss, counters)


def _ring_metrics(status: Mapping[str, Any]) -> Iterator[Any]:
    labels = ["ring", "reader"]
    written = CounterMetricFamily(
        "streamasr_ring_frames_written", "Frames written", labels=["ring"]
    )
    read = CounterMetricFamily("streamasr_ring_frames_read", "Frames read", labels=labels)
    lost = CounterMetricFamily("streamasr_ring_frames_lost", "Frames lost", labels=labels)
    over = CounterMetricFamily("streamasr_ring_overruns", "Overruns", labels=labels)
    under = CounterMetricFamily("streamasr_ring_underruns", "Underruns", labels=labels)
    fill = GaugeMetricFamily("streamasr_ring_fill_frames", "Frames readable now", labels=labels)
    for r in status.get("rings", []):
        name = str(r.get("name", ""))
        written.add_metric([name], float(r.get("writes", 0)))
        for rd in r.get("readers", []):
            lab = [name, str(rd.get("reader", ""))]
            read.add_metric(lab, float(rd.get("reads", 0)))
            lost.add_metric(lab, float(rd.get("dropped_frames", 0)))
            over.add_metric(lab, float(rd.get("overruns", 0)))
            under.add_metric(lab, float(rd.get("underruns", 0)))
            fill.add_metric(lab, float(rd.get("fill", 0)))
    yield from (written, read, lost, over, under, fill)


def _latency_metrics(status: Mapping[str, Any]) -> Iterator[Any]:
    lat = GaugeMetricFamily(
        "streamasr_latency_seconds", "Latency percentiles per series", labels=["series", "quantile"]
    )
    count = GaugeMetricFamily(
        "streamasr_latency_samples", "Observations in the latency window", labels=["series"]
    )
    for series, v in sorted(dict(status.get("latency", {})).items()):
        for q in ("p50", "p95", "p99"):
            if q in v:
                lat.add_metric([str(series), "0." + q[1:]], float(v[q]))
        count.add_metric([str(series)], float(v.get("count", 0)))
    yield from (lat, count)


def _ended_stream_metrics(status: Mapping[str, Any]) -> Iterator[Any]:
    ended = CounterMetricFamily(
        "streamasr_ended_streams",
        "Run-time streams ended (counter=streams) and their counters summed",
        labels=["counter"],
    )
    for key, value in sorted(dict(status.get("ended_streams", {})).items()):
        ended.add_metric([str(key)], float(value))
    yield ended


class StatusCollector(Collector):
    """A collector over one status map and the gateway's counters/gauges."""

    def __init__(
        self, status: Mapping[str, Any], counters: Mapping[str, int], gauges: Mapping[str, float]
    ) -> None:
        """Snapshot views; :meth:`collect` reads them once."""
        self.status, self.counters, self.gauges = status, counters, gauges

    def collect(self) -> Iterator[Any]:
        """Yield every metric family."""
        yield from _actor_metrics(self.status)
        yield from _ring_metrics(self.status)
        yield from _latency_metrics(self.status)
        yield from _ended_stream_metrics(self.status)
        errors = CounterMetricFamily(
            "streamasr_protocol_errors", "Malformed messages seen by the supervisor"
        )
        errors.add_metric([], float(self.status.get("protocol_errors", 0)))
        yield errors
        gw = CounterMetricFamily(
            "streamasr_gateway_events",
            "Gateway counters (connections, refused, protocol errors, close codes, ...)",
            labels=["counter"],
        )
        for key, value in sorted(self.counters.items()):
            gw.add_metric([key], float(value))
        yield gw
        for key, level in sorted(self.gauges.items()):
            g = GaugeMetricFamily(f"streamasr_gateway_{key}", f"Gateway gauge {key}")
            g.add_metric([], float(level))
            yield g


def render(
    status: Mapping[str, Any], counters: Mapping[str, int], gauges: Mapping[str, float]
) -> bytes:
    """Prometheus text for ``status`` plus the gateway's ``counters`` and ``gauges``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(status, counters, gauges))
    return bytes(generate_latest(registry))
