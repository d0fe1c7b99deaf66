"""Telemetry benchmark: what tracing adds to tick-to-order, and what reaches the collector.

The same paced pipeline runs with telemetry off (no exporter, no metrics endpoint) and on (OTLP
gRPC to a real receiver on loopback, metrics endpoint up), alternating, so drift of the machine
shows in both. Target: tracing adds at most 10 % to the tick-to-order p50, and every intent's
root span reaches the collector. JSON lines out.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline import HERE, broker_handle, emit, summary  # noqa: E402
from tests.otlp_receiver import OtlpReceiver  # noqa: E402
from tradeplane.config.loading import parse_config  # noqa: E402
from tradeplane.config.models import TradeplaneConfig  # noqa: E402
from tradeplane.journal.reader import JournalReader  # noqa: E402
from tradeplane.supervisor import deployment  # noqa: E402

TARGET_P50_OVERHEAD_PCT = 10.0


def exporter_rate(rx: OtlpReceiver, intents: int = 3000) -> dict[str, Any]:
    """Spans per second one exporter process builds from journal lines and ships over OTLP
    gRPC (the receiver shares this process, so the figure is a floor)."""
    from tradeplane.config.telemetry import TelemetryConfig
    from tradeplane.journal.records import iso_utc
    from tradeplane.telemetry.context import intent_context, risk_check_context, submit_context
    from tradeplane.telemetry.export import Resources, SpanShipper, make_exporter
    from tradeplane.telemetry.spans import SpanBuilder

    t0, events = time.time(), []
    for i in range(intents):
        iid = f"{i:024x}"
        coid = "tp" + iid
        root = intent_context("bench", iid).traceparent
        check = risk_check_context(root, iid)
        sub = submit_context(check.traceparent if check else None, coid)
        tp = sub.traceparent if sub else None
        base = {"symbol": "AAA", "side": "buy", "quantity": 1.0, "client_order_id": coid}
        fill = {"fill_id": f"f{i}", "ts": t0, "quantity": 1.0, "price": 10.0, "fee": 0.0}
        steps = [
            ("intent", root, {"bar_recv_ts": t0, "ts": t0}),
            ("order_submitting", tp, {"trace": {"risk_received_ts": t0, "approved_ts": t0}}),
            ("order_submitted", tp, {"status": "submitted", "sent_ts": t0}),
            ("order_accepted", tp, {"status": "accepted", "received_ts": t0}),
            ("order_filled", tp, {"status": "filled", "received_ts": t0, "fill": fill}),
        ]
        for kind, traceparent, data in steps:
            events.append(
                {
                    "seq": len(events) + 1,
                    "ts": iso_utc(t0),
                    "kind": kind,
                    "deployment": "bench",
                    "intent_id": iid,
                    "client_order_id": coid,
                    "traceparent": traceparent,
                    "data": {**base, **data},
                }
            )
    cfg = TelemetryConfig(traces_exporter="otlp-grpc", otlp_endpoint=rx.grpc_url)
    exporter = make_exporter(cfg)
    assert exporter is not None
    shipper = SpanShipper(
        exporter, Resources("tradeplane", "bench"), batch_spans=512, max_queue_spans=10**7
    )
    started = time.perf_counter()
    spans = SpanBuilder().feed(events)
    shipper.add(spans)
    while len(shipper):
        if shipper.ship_once().failed:
            break
    took = time.perf_counter() - started
    shipper.shutdown()
    return {
        "bench": "telemetry.exporter_rate",
        "journal_lines": len(events),
        "spans": len(spans),
        "spans_per_s": len(spans) / took,
        "intents_per_s": intents / took,
        "failed_exports": shipper.failures,
    }


def config(name: str, state: Path, telemetry: dict[str, Any], *, ticks_per_s: float) -> Any:
    return parse_config(
        {
            "deployment": {"name": name, "mode": "paper", "state_dir": str(state)},
            "venue": {
                "kind": "sim",
                "sim": {
                    "symbols": [f"S{i:03d}" for i in range(20)],
                    "seed": 11,
                    "speed": 60.0 * ticks_per_s,
                    "history_bars": 0,
                },
            },
            "journal": {"bars": "summary", "fsync": True},
            "supervisor": {"feed_silence_s": 30.0, "inflight_limit": 64},
            "telemetry": telemetry,
            "strategies": [
                {
                    "name": "bench",
                    "path": str(HERE / "strategies" / "pinger.py"),
                    "class_name": "Pinger",
                    "params": {"every": 4},
                }
            ],
        },
        source="bench",
    )


def run_once(cfg: TradeplaneConfig, duration_s: float) -> list[float]:
    deployment.deploy(cfg)
    try:
        broker = broker_handle(cfg.deployment.name)
        time.sleep(3.0)  # warm-up
        ray.get(broker.latency_samples.remote(clear=True))
        time.sleep(duration_s)
        samples: list[float] = ray.get(broker.latency_samples.remote(clear=True))["total_ms"]
        return samples
    finally:
        deployment.stop(cfg.deployment.name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    duration = 5.0 if args.quick else 20.0
    rounds = 1 if args.quick else 2
    ticks = 10.0
    deployment.connect(None)
    off: list[float] = []
    on: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, OtlpReceiver() as rx:
        emit(exporter_rate(rx))
        rx.clear()
        traced = {
            "traces_exporter": "otlp-grpc",
            "otlp_endpoint": rx.grpc_url,
            "metrics_port": 0,
        }
        for r in range(rounds):
            plain = config(
                f"bench-tel-off-{r}",
                Path(tmp) / f"off{r}",
                {"metrics_port": None},
                ticks_per_s=ticks,
            )
            off += run_once(plain, duration)
            state = Path(tmp) / f"on{r}"
            on += run_once(config(f"bench-tel-on-{r}", state, traced, ticks_per_s=ticks), duration)
            with JournalReader.open(state) as j:
                intents = len(j.events(kinds=["intent"]))
            roots = sum(
                1
                for s in rx.spans()
                if s.name == "strategy.intent"
                and s.attributes.get("tradeplane.deployment") == f"bench-tel-on-{r}"
            )
            emit(
                {
                    "bench": "telemetry.delivery",
                    "round": r,
                    "intents_journaled": intents,
                    "intent_roots_received": roots,
                    "spans_received": len(rx.spans()),
                    "ok": roots == intents,
                }
            )
    s_off, s_on = summary(off), summary(on)
    overhead = None
    if s_off["p50"] and s_on["p50"]:
        overhead = (s_on["p50"] - s_off["p50"]) / s_off["p50"] * 100.0
    emit(
        {
            "bench": "telemetry.tick_to_order",
            "off_ms": s_off,
            "on_ms": s_on,
            "p50_overhead_pct": overhead,
            "target_pct": TARGET_P50_OVERHEAD_PCT,
            "ok": overhead is not None and overhead <= TARGET_P50_OVERHEAD_PCT,
        }
    )
    ray.shutdown()


if __name__ == "__main__":
    main()
