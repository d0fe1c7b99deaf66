"""Promptness benchmark: how soon a refusal or a stop takes effect, beside its floor.

The unit tests check *that* these happen (and in what order); how long they take depends on the
machine's load, so it is measured here instead, each figure beside a floor measured in the same
run on the same objects, and against the bound the unit tests used to assert.

* ``promptness.sim_drop_ends_long_poll``: a sim-venue long poll (waiting up to 30 s) ended by an
  injected ``drop_connection``, from the injection to the poll's ``VenueUnavailable``. Floor: the
  same poll woken by a new venue event. Bound 5 s.
* ``promptness.ib_client_id_in_use``: ``IbSession.connect`` with a client id another
  connection holds, to ``IbClientIdInUse`` (connect timeout 20 s), against the fake TWS on
  loopback. Floor: a successful connect to the same fake. Bound 5 s.
* ``promptness.otlp_receiver_stop``: ``OtlpReceiver.stop()`` while it holds an export request
  under a 30 s delay. Floor: stopping an idle receiver. Bound 2 s.

``make bench`` or ``python bench/promptness.py`` (``--quick``: smoke run); JSON lines on stdout,
one object per measurement; ``ok`` when the slowest run is under the bound.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: E402
    OTLPSpanExporter,
)
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402

from bench.pipeline import emit, summary  # noqa: E402
from tests.helpers import eventually  # noqa: E402
from tests.otlp_receiver import OtlpReceiver  # noqa: E402
from tests.standins.tws import FakeTws  # noqa: E402
from tradeplane.actors.venue import StreamingSimVenue  # noqa: E402
from tradeplane.config.venues import IbConfig  # noqa: E402
from tradeplane.core.clock import ManualClock  # noqa: E402
from tradeplane.core.model import OrderType, Side  # noqa: E402
from tradeplane.venues.ib.session import IbClientIdInUse, IbSession  # noqa: E402
from tradeplane.venues.sim import SimVenue, VenueOrderRequest  # noqa: E402
from tradeplane.venues.sim.faults import FaultBook, VenueUnavailable  # noqa: E402


def report(name: str, took_s: list[float], floor_s: list[float], bound_s: float) -> None:
    ms = [t * 1000 for t in took_s]
    emit(
        {
            "bench": name,
            "ms": summary(ms),
            "floor_ms": summary([t * 1000 for t in floor_s]),
            "bound_ms": bound_s * 1000,
            "ok": bool(ms) and max(ms) < bound_s * 1000,
        }
    )


# -- sim venue: a drop ends a long poll ------------------------------------------------------


async def _no_sleep(seconds: float) -> None:
    return None


def _sim() -> StreamingSimVenue:
    clock = ManualClock()
    return StreamingSimVenue(
        SimVenue.open(None, clock=clock), FaultBook(clock, seed=0, target="venue"), sleep=_no_sleep
    )


async def _waiting_poll(sim: StreamingSimVenue) -> asyncio.Future[list[Any]]:
    poll = asyncio.ensure_future(sim.events_since(0, 100, 30.0))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not poll.done()
    return poll


async def sim_bench(runs: int) -> None:
    took, floor = [], []
    for i in range(runs):
        sim = _sim()
        poll = await _waiting_poll(sim)
        started = time.perf_counter()
        sim.inject_fault("drop_connection")
        try:
            await poll
        except VenueUnavailable:
            took.append(time.perf_counter() - started)

        sim = _sim()
        poll = await _waiting_poll(sim)
        started = time.perf_counter()
        await sim.submit(VenueOrderRequest(f"c-{i}", "ACME", Side.BUY, 1.0, OrderType.MARKET))
        if await poll:
            floor.append(time.perf_counter() - started)
    report("promptness.sim_drop_ends_long_poll", took, floor, 5.0)


# -- IB: a client id in use is refused at once -----------------------------------------------


async def ib_bench(runs: int) -> None:
    took, floor = [], []
    async with FakeTws() as fake:
        for i in range(runs):
            cfg = IbConfig(host="127.0.0.1", port=fake.port, client_id=100 + i)
            first = IbSession(cfg.model_copy(update={"connect_timeout_s": 5.0}))
            started = time.perf_counter()
            await first.connect()
            floor.append(time.perf_counter() - started)
            second = IbSession(cfg.model_copy(update={"connect_timeout_s": 20.0}))
            started = time.perf_counter()
            try:
                await second.connect()
            except IbClientIdInUse:
                took.append(time.perf_counter() - started)
            first.disconnect()
    report("promptness.ib_client_id_in_use", took, floor, 5.0)


# -- OTLP receiver: stop does not wait for a held request ------------------------------------


def _stop_holding_a_request() -> float:
    rx = OtlpReceiver().start()
    rx.set_delay(30)
    provider = TracerProvider()
    exporter = OTLPSpanExporter(endpoint=rx.grpc_endpoint, insecure=True, timeout=2)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")

    def _emit() -> None:
        with tracer.start_as_current_span("held"):
            pass

    worker = threading.Thread(target=_emit, daemon=True)
    worker.start()
    eventually(lambda: rx.requests >= 1, timeout_s=10, what="export request reached receiver")
    started = time.perf_counter()
    rx.stop()
    took = time.perf_counter() - started
    worker.join(5)
    provider.shutdown()
    return took


def _stop_idle() -> float:
    rx = OtlpReceiver().start()
    started = time.perf_counter()
    rx.stop()
    return time.perf_counter() - started


def otlp_bench(runs: int) -> None:
    took = [_stop_holding_a_request() for _ in range(runs)]
    floor = [_stop_idle() for _ in range(runs)]
    report("promptness.otlp_receiver_stop", took, floor, 2.0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short run (smoke test, not a result)")
    args = ap.parse_args()
    logging.getLogger("ib_async").setLevel(logging.CRITICAL)  # the refusals it logs are the point
    sim_runs, ib_runs, otlp_runs = (20, 3, 2) if args.quick else (500, 20, 10)
    asyncio.run(sim_bench(sim_runs))
    asyncio.run(ib_bench(ib_runs))
    otlp_bench(otlp_runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
