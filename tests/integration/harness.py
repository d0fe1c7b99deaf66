"""What integration tests do around a deployment: run it, wait on its journal, read its status."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import ray

from tests.helpers import eventually
from tests.integration.conftest import HERE
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core import ids
from tradeplane.journal.reader import JournalReader
from tradeplane.supervisor import deployment

STRATEGIES = str(HERE / "strategies" / "flipper.py")


def actor(deployment: str, role: str) -> Any:
    """The actor playing ``role`` now, resolved as every part of tradeplane does (a promoted
    standby keeps its own name); ValueError when none does, like ``ray.get_actor``."""
    from tradeplane.cluster.names import current_name

    return ray.get_actor(current_name(deployment, role), namespace="tradeplane")


def strategy(name: str, class_name: str, symbols: list[str], **params: Any) -> dict[str, Any]:
    """A ``[[strategies]]`` entry for one of the test strategies in strategies/flipper.py."""
    return {
        "name": name,
        "path": STRATEGIES,
        "class_name": class_name,
        "symbols": symbols,
        "params": params,
    }


@dataclass
class Running:
    supervisor: Any
    name: str
    state_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)


@contextmanager
def running(cfg: TradeplaneConfig) -> Iterator[Running]:
    """Deploy ``cfg``; always stop it afterwards, keeping the stop summary."""
    run = Running(deployment.deploy(cfg), cfg.deployment.name, cfg.deployment.resolved_state_dir())
    try:
        yield run
    finally:
        run.summary = deployment.stop(run.name)


def journal_counts(state_dir: Path) -> dict[str, int]:
    try:
        with JournalReader.open(state_dir) as j:
            return j.counts_by_kind()
    except Exception:  # not created yet, or mid-start
        return {}


def wait_for_kind(state_dir: Path, kind: str, at_least: int, timeout_s: float = 60.0) -> int:
    eventually(
        lambda: journal_counts(state_dir).get(kind, 0) >= at_least,
        timeout_s=timeout_s,
        what=f"{at_least} x {kind} journaled",
    )
    return journal_counts(state_dir).get(kind, 0)


def live_status(name: str) -> dict[str, Any]:
    try:
        return deployment.status(name, timeout_s=5) or {}
    except Exception:  # the supervisor may be restarting
        return {}


def recovery_events(state_dir: Path) -> dict[str, list[str]]:
    """Per recovery target, the kinds of its recovery events in journal order."""
    kinds = ["recovery_attempt", "recovery_succeeded", "recovery_failed", "recovery_exhausted"]
    out: dict[str, list[str]] = {}
    with JournalReader.open(state_dir) as j:
        for e in j.events(kinds=kinds):
            out.setdefault(e["data"]["target"], []).append(e["kind"])
    return out


@contextmanager
def market_moving(advance_one_minute: Callable[[], None], every_s: float = 0.4) -> Iterator[None]:
    """A stand-in's market clock moving on: one minute (its bars close) every ``every_s``."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(every_s):
            advance_one_minute()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def heartbeat(name: str, role: str) -> dict[str, Any]:
    beat: dict[str, Any] = ray.get(actor(name, role).heartbeat.remote(), timeout=10)
    return beat


def strategy_stats(name: str, strategy_name: str) -> dict[str, Any]:
    return dict(heartbeat(name, f"strategy/{strategy_name}")["stats"])


def feed_source(name: str) -> dict[str, Any]:
    return dict(heartbeat(name, "feed")["source"])


def bars_seen(state_dir: Path, strategy_name: str) -> list[datetime]:
    """The bar times a strategy that submits on every bar acted on, in the order it acted (from
    the triggers of its journaled intents, by the strategy's own clock: the journal's order of
    intent rows is not the strategy's, since its intent record goes off the critical path and
    the broker's order_submitting, which carries the intent, may be journaled first)."""
    with JournalReader.open(state_dir) as j:
        intents = j.intents(strategy=strategy_name)
    made = sorted(intents, key=lambda i: (float(i["ts"] or 0.0), i["seq"]))
    triggers = [i["trigger"] for i in made]
    return [t for t in map(ids.bar_trigger_time, triggers) if t is not None]
