"""The shadow command's session config and its status line (no Ray)."""

from __future__ import annotations

from pathlib import Path

from tradeplane.cli.shadow_cmd import FeedKind, shadow_config, status_line, strategy_classes

FLIPPER = Path(__file__).resolve().parents[2] / "integration" / "strategies" / "flipper.py"


def test_strategy_file_with_several_classes_then_all_listed() -> None:
    assert {"Flipper", "Crasher", "BuyOnce"} <= set(strategy_classes(FLIPPER))


def test_okx_feed_then_shadow_mode_sim_venue_and_env_urls(tmp_path: Path) -> None:
    cfg = shadow_config(
        FLIPPER,
        "Flipper",
        FeedKind.OKX,
        ("BTC-USDT",),
        feed_silence_s=5.0,
        state_dir=tmp_path,
        env={"TRADEPLANE_OKX_REST_URL": "http://127.0.0.1:9"},
    )
    assert cfg.deployment.mode.value == "shadow" and cfg.feed.kind == "okx"
    assert cfg.venue.symbols == ("BTC-USDT",) and cfg.feed.okx.rest_url == "http://127.0.0.1:9"
    assert cfg.supervisor.feed_silence_s == 5.0 and cfg.telemetry.metrics_port is None


def test_ib_feed_then_ib_bars_on_the_equity_calendar_and_no_order_routed(tmp_path: Path) -> None:
    cfg = shadow_config(
        FLIPPER,
        "Flipper",
        FeedKind.IB,
        ("AAPL",),
        feed_silence_s=None,
        state_dir=tmp_path,
        env={"IB_PORT": "4002", "IB_CLIENT_ID": "7"},
    )
    assert cfg.deployment.mode.value == "shadow"
    assert cfg.venue.kind == "ib" and cfg.venue.ib.symbols == ("AAPL",)
    assert (cfg.venue.ib.port, cfg.venue.ib.client_id) == (4002, 7)
    assert cfg.session.calendar == "XNYS"


def test_status_line_then_every_field_the_operator_reads() -> None:
    status = {
        "health": "ok",
        "recovery": {"state": "idle", "attempts": {"feed": 1}},
        "last_bar_age_s": 1.25,
        "strategies": {
            "s": {
                "positions": {"AAA": {"quantity": 2.0}},
                "recent_intents": [{"side": "buy", "quantity": 2.0, "symbol": "AAA", "ts": 1}],
            }
        },
    }
    line = status_line(status, "continuous")
    assert line == (
        "health=ok recovery=idle attempts=1 session=continuous last_bar_age=1.2s "
        "positions=AAA:2 recent_intents=buy 2 AAA"
    )
