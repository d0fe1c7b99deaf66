"""What the human status view says about the supervisor's succession and the standbys."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from tradeplane.cli.render import drift_line, standbys_line, telemetry_line


def shown(status: dict[str, Any]) -> str:
    console = Console(width=300, record=True)
    console.print(standbys_line(status))
    return console.export_text()


def test_standbys_line_when_standby_watches_then_shows_its_memory_and_cpu() -> None:
    text = shown(
        {
            "supervisor": {
                "name": "d/supervisor-standby",
                "term": 3,
                "standby": {
                    "name": "d/supervisor",
                    "watching": True,
                    "pid": 42,
                    "rss_bytes": 90 * 2**20,
                    "cpu_s": 1.5,
                },
            },
            "standbys": {
                "enabled": True,
                "promoted": 2,
                "fallbacks": 1,
                "rss_bytes": 200 * 2**20,
                "pool": [{"ready": True, "cpu_s": 0.5}, {"ready": False, "cpu_s": None}],
            },
        }
    )
    assert "supervisor d/supervisor-standby (term 3)" in text
    assert "standby d/supervisor watching, 90 MiB, cpu 1.50 s" in text
    assert "child standbys: 1/2 ready, 200 MiB, cpu 0.50 s, promoted 2, fallbacks 1" in text


def test_standbys_line_when_no_supervisor_standby_then_says_so() -> None:
    text = shown({"supervisor": {"name": "d/supervisor", "term": 1, "standby": None}})
    assert "no standby" in text
    assert "child standbys: off" in text


def test_standbys_line_when_standby_watches_an_older_term_then_flags_it() -> None:
    standby = {"name": "d/supervisor-standby", "watching": False}
    text = shown({"supervisor": {"name": "d/supervisor", "term": 2, "standby": standby}})
    assert "not watching this term" in text


def drift_shown(drift: dict[str, Any] | None) -> str:
    console = Console(width=300, record=True)
    line = drift_line({"drift": drift})
    if line is not None:
        console.print(line)
    return console.export_text()


def test_drift_line_when_not_tracked_then_nothing_shown() -> None:
    assert drift_shown(None) == ""


def test_drift_line_while_the_tracker_opens_then_it_says_so_not_no_row() -> None:
    text = drift_shown({"opening": True, "last_row": None, "active_alerts": []})
    assert "drift: opening (the shadow replays the recorded bars)" in text


def test_drift_line_when_alert_active_then_figures_and_the_alert_named() -> None:
    text = drift_shown(
        {
            "last_row": "2026-01-01T00:05:00+00:00",
            "return_drift_pct": -0.4,
            "tracking_error_pct": 2.5,
            "fill_slippage_bps": 7.25,
            "shortfall_vs_backtest": 0.012,
            "active_alerts": [{"strategy": "s1", "figure": "fill_slippage_bps"}],
        }
    )
    assert "return -0.40 pp vs backtest" in text and "fills 7.25 bps" in text
    assert "shortfall vs baseline +1.20%" in text
    assert "ALERT: s1 fill_slippage_bps" in text


def test_telemetry_line_when_alert_webhook_then_masked_url_and_delivery_shown() -> None:
    tel = {
        "metrics_endpoint": "http://127.0.0.1:9464/metrics",
        "traces_exporter": "none",
        "alerts": {
            "webhook": "https://hooks.example.com/***",
            "delivered": 3,
            "queued": 2,
            "dropped": 0,
            "rejected": 1,
            "last_error": "HTTP 503",
        },
    }
    text = telemetry_line({"telemetry": tel}).plain
    assert "alerts to https://hooks.example.com/***: delivered 3, queued 2, dropped 0" in text
    assert "refused 1 (receiver: HTTP 503)" in text


def test_telemetry_line_when_no_webhook_then_no_alerts_part() -> None:
    text = telemetry_line({"telemetry": {"traces_exporter": "none", "alerts": None}}).plain
    assert "alerts" not in text
