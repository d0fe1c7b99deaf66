"""OKX and Binance market data through the whole actor pipeline, against their stand-ins on
loopback: bars reach the strategies once and in order, across dropped connections (gaps filled
over REST), a silent venue is seen as ``feed_silent`` and recovered, and malformed messages are
journaled and skipped. Orders go to the sim venue (paper), which matches against these bars."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import (
    bars_seen,
    feed_source,
    journal_counts,
    live_status,
    market_moving,
    running,
    strategy,
    strategy_stats,
    wait_for_kind,
)
from tests.standins.binance import BinanceStandin
from tests.standins.okx import OkxStandin
from tradeplane.journal.reader import JournalReader

pytestmark = pytest.mark.usefixtures("ray_session")


def minutes_passing(standin: Any, every_s: float = 0.4) -> AbstractContextManager[None]:
    return market_moving(lambda: standin.advance(1), every_s)


def crypto_config(
    state: Path,
    feed: dict[str, Any],
    symbols: tuple[str, ...],
    every: int = 2,
    feed_silence_s: float = 3.0,
) -> Any:
    return make_config(
        state,
        symbols=symbols,
        strategies=[strategy("flip", "Flipper", list(symbols), every=every, quantity=0.01)],
        feed=feed,
        supervisor={"feed_silence_s": feed_silence_s, "recovery_cooldown_s": 0.1},
    )


def test_okx_websocket_then_bars_reach_the_strategy_once_across_a_dropped_connection(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with OkxStandin(symbols=["BTC-USDT"]) as okx, minutes_passing(okx):
        cfg = crypto_config(
            state,
            {"kind": "okx", "okx": {"rest_url": okx.rest_url, "ws_url": okx.ws_url}},
            ("BTC-USDT",),
        )
        with running(cfg) as run:
            wait_for_kind(state, "order_filled", 2)
            okx.disconnect_all(abrupt=True)
            eventually(lambda: feed_source(run.name)["connects"] >= 2, timeout_s=30)
            bars = strategy_stats(run.name, "flip")["bars"]
            eventually(
                lambda: strategy_stats(run.name, "flip")["bars"] >= bars + 5,
                timeout_s=30,
            )
            okx.send_raw('{"arg":{"channel":"candle1m","instId":"BTC-USDT"},"data":[["oops"')
            wait_for_kind(state, "venue_message_rejected", 1)
            stats = strategy_stats(run.name, "flip")
            assert stats["duplicate_bars"] == 0 and stats["out_of_order_bars"] == 0
            assert live_status(run.name)["health"] == "ok"
    with JournalReader.open(state) as j:
        rejected = j.events(kinds=["venue_message_rejected"])[0]["data"]
    assert rejected["source"] == "okx" and rejected["reason"].startswith("okx: ")


def test_binance_silent_then_dropped_then_feed_silent_recovered_and_every_minute_once(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with BinanceStandin(symbols=["BTCUSDT"], ping_interval_s=1.0) as bn, minutes_passing(bn):
        cfg = crypto_config(
            state,
            {"kind": "binance", "binance": {"rest_url": bn.rest_url, "ws_url": bn.ws_url}},
            ("BTCUSDT",),
            every=1,
            # Above the reconnect below: two 429s with Retry-After 1 s on top of the backoff
            # (about 3 s, more on a loaded machine) must read as rate limits being waited out,
            # not as a silent feed whose restart would lose the feed's count of them.
            feed_silence_s=6.0,
        )
        with running(cfg) as run:
            wait_for_kind(state, "order_filled", 2)
            bn.set_silent(True)
            eventually(
                lambda: live_status(run.name).get("health") in ("feed_silent", "recovering"),
                timeout_s=30,
                what="the silence seen",
            )
            bn.set_silent(False)
            eventually(lambda: live_status(run.name).get("health") == "ok", timeout_s=60)
            bn.rate_limit(2)  # the backfill after the next reconnect meets HTTP 429 first
            bn.disconnect_all(abrupt=True)
            eventually(lambda: feed_source(run.name)["rate_limited"] >= 2, timeout_s=30)
            bars = strategy_stats(run.name, "flip")["bars"]
            eventually(
                lambda: strategy_stats(run.name, "flip")["bars"] >= bars + 3,
                timeout_s=30,
            )
            stats = strategy_stats(run.name, "flip")
            assert stats["duplicate_bars"] == 0 and stats["out_of_order_bars"] == 0
    with JournalReader.open(state) as j:
        kinds = j.counts_by_kind()
        changes = [e["data"]["health"] for e in j.events(kinds=["health_changed"])]
    assert "feed_silent" in changes
    assert kinds.get("recovery_succeeded", 0) >= 1
    assert_every_minute_once(state)


def assert_every_minute_once(state: Path) -> None:
    seen = bars_seen(state, "flip")
    assert len(seen) >= 10
    gaps = [(a, b) for a, b in pairwise(seen) if b - a != timedelta(minutes=1)]
    assert gaps == [], f"minutes skipped, repeated or out of order: {gaps}"


def test_okx_rest_polling_then_rate_limits_backed_off_an_outage_seen_and_every_minute_once(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with OkxStandin(symbols=["BTC-USDT"]) as okx, minutes_passing(okx, every_s=0.5):
        rest = {"transport": "rest", "poll_interval_s": 0.2}
        cfg = crypto_config(
            state,
            {"kind": "okx", "okx": {"rest_url": okx.rest_url, "ws_url": okx.ws_url, **rest}},
            ("BTC-USDT",),
            every=1,
            feed_silence_s=8.0,  # longer than the rate-limit backoffs: those are not silence
        )
        with running(cfg) as run:
            wait_for_kind(state, "order_filled", 2)
            okx.rate_limit(3)  # code 50011
            eventually(lambda: feed_source(run.name)["rate_limited"] >= 3, timeout_s=30)
            wait_for_kind(state, "order_filled", journal_counts(state)["order_filled"] + 2)
            okx.rate_limit(2, http_429=True)
            eventually(lambda: feed_source(run.name)["rate_limited"] >= 5, timeout_s=30)
            okx.refuse_connections(True, rest=True)  # OKX down: every poll answered 503
            eventually(
                lambda: live_status(run.name).get("health") in ("feed_silent", "recovering"),
                timeout_s=30,
                what="the outage seen",
            )
            okx.refuse_connections(False)
            eventually(lambda: live_status(run.name).get("health") == "ok", timeout_s=60)
            bars = strategy_stats(run.name, "flip")["bars"]
            eventually(lambda: strategy_stats(run.name, "flip")["bars"] >= bars + 3, timeout_s=30)
        polls, websockets = len(okx.rest_requests), okx.ws_connections
    with JournalReader.open(state) as j:
        changes = [e["data"]["health"] for e in j.events(kinds=["health_changed"])]
    assert "feed_silent" in changes
    assert_every_minute_once(state)
    assert websockets == 0 and polls > 10  # polled, never pushed


def test_shadow_command_on_okx_then_periodic_health_lines_a_summary_and_no_order_routed(
    ray_address: str, tmp_path: Path
) -> None:
    from tests.integration.test_run_cli import run_env, run_shadow

    state = tmp_path / "shadow"
    with OkxStandin(symbols=["BTC-USDT"]) as okx, minutes_passing(okx, every_s=0.3):
        env = run_env()
        env.update(TRADEPLANE_OKX_REST_URL=okx.rest_url, TRADEPLANE_OKX_WS_URL=okx.ws_url)
        out, lines = run_shadow(ray_address, state, "okx", "BTC-USDT", env)
    for key in ("recovery=", "attempts=", "session=continuous", "last_bar_age=", "positions="):
        assert all(key in ln for ln in lines), (key, lines)
    assert any("recent_intents=" in ln and "BTC-USDT" in ln for ln in lines), lines
    assert "summary: health at stop stopped" in out.stdout
    with JournalReader.open(state) as j:
        started = j.events(kinds=["deployment_started"])[-1]["data"]
        fills = j.fills()
    assert started["mode"] == "shadow" and fills  # virtual fills only: no venue actor
    assert not (state / "venue").exists()
