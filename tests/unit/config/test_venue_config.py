"""``[feed]`` and ``[venue.ib]``, and the environment variables that override their URLs, hosts
and ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradeplane.config.loading import ConfigError, load_config
from tradeplane.config.venues import (
    BinanceFeedConfig,
    FeedConfig,
    IbConfig,
    OkxFeedConfig,
    apply_venue_env,
)

BASE = '[deployment]\nname = "t"\n[[strategies]]\nname = "a"\npath = "s.py"\nclass_name = "A"\n'


def write_config(folder: Path, extra: str = "") -> Path:
    (folder / "s.py").write_text("class A:\n    pass\n")
    f = folder / "c.toml"
    f.write_text(BASE + extra)
    return f


def test_every_field_has_a_docstring() -> None:
    for model in (FeedConfig, OkxFeedConfig, BinanceFeedConfig, IbConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no docstring"


def test_env_urls_and_ib_address_then_they_win_over_the_file() -> None:
    raw: dict = {"feed": {"okx": {"rest_url": "https://file.example"}}}
    apply_venue_env(
        raw,
        {
            "TRADEPLANE_OKX_REST_URL": "http://127.0.0.1:9001",
            "TRADEPLANE_OKX_WS_URL": "ws://127.0.0.1:9001/ws/v5/business",
            "TRADEPLANE_BINANCE_REST_URL": "http://127.0.0.1:9002",
            "TRADEPLANE_BINANCE_WS_URL": "ws://127.0.0.1:9002",
            "IB_HOST": "127.0.0.1",
            "IB_PORT": "4002",
            "IB_CLIENT_ID": "17",
            "IB_ACCOUNT": "DU999",
        },
    )
    feed = FeedConfig.model_validate(raw["feed"])
    ib = IbConfig.model_validate(raw["venue"]["ib"])
    assert feed.okx.rest_url == "http://127.0.0.1:9001"
    assert feed.okx.ws_url == "ws://127.0.0.1:9001/ws/v5/business"
    assert feed.binance.rest_url == "http://127.0.0.1:9002"
    assert feed.binance.ws_url == "ws://127.0.0.1:9002"
    assert (ib.host, ib.port, ib.client_id, ib.account) == ("127.0.0.1", 4002, 17, "DU999")


def test_env_ib_port_not_a_number_then_config_error_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="IB_PORT"):
        load_config(write_config(tmp_path), env={"IB_PORT": "seventy"})


def test_bad_url_in_file_then_error_names_the_field(tmp_path: Path) -> None:
    extra = '[feed.okx]\nws_url = "https://not-a-websocket"\n'
    with pytest.raises(ConfigError, match=r"feed\.okx\.ws_url"):
        load_config(write_config(tmp_path, extra), env={})


def test_feed_styles_then_silence_defaults_90s_for_rest_polling_30s_for_streams() -> None:
    assert FeedConfig().style == "streaming"
    assert FeedConfig(kind="okx").style == "streaming"
    assert FeedConfig(kind="okx", okx=OkxFeedConfig(transport="rest")).style == "rest"
    assert FeedConfig(kind="binance").style == "streaming"


@pytest.mark.parametrize(
    ("extra", "env", "silence_s"),
    [
        ("", {}, 30.0),  # sim: a 1-minute bar every wall-clock second
        ("[venue.sim]\nspeed = 1\n", {}, 90.0),  # sim in real time: bars a minute apart
        ('[feed]\nkind = "okx"\n', {}, 90.0),
        ('[feed]\nkind = "okx"\n[feed.okx]\ntransport = "rest"\n', {}, 90.0),
        ('[feed]\nkind = "binance"\n', {}, 90.0),
        ('[venue]\nkind = "ib"\n', {"IB_PORT": "4002"}, 90.0),
        ('[feed]\nkind = "okx"\n[supervisor]\nfeed_silence_s = 12\n', {}, 12.0),
    ],
)
def test_default_feed_silence_outlasts_the_gap_between_two_closed_bars(
    tmp_path: Path, extra: str, env: dict[str, str], silence_s: float
) -> None:
    cfg = load_config(write_config(tmp_path, extra), env=env)
    assert cfg.resolved_feed_silence_s() == silence_s
    if cfg.supervisor.feed_silence_s is None:
        assert cfg.resolved_feed_silence_s() > cfg.bar_gap_s()


def test_external_feed_and_ib_venue_then_load(tmp_path: Path) -> None:
    assert load_config(write_config(tmp_path, '[feed]\nkind = "okx"\n'), env={}).feed.kind == "okx"
    cfg = load_config(write_config(tmp_path, '[venue]\nkind = "ib"\n'), env={"IB_PORT": "4002"})
    assert cfg.venue.kind == "ib" and cfg.venue.ib.port == 4002 and cfg.venue.symbols == ("SPY",)


def test_crypto_feed_with_orders_at_ib_then_refused(tmp_path: Path) -> None:
    extra = '[venue]\nkind = "ib"\n[feed]\nkind = "okx"\n'
    with pytest.raises(ConfigError, match=r"feed\.kind"):
        load_config(write_config(tmp_path, extra), env={})


@pytest.mark.parametrize(
    ("cfg", "accounts", "problem"),
    [
        (IbConfig(), ["DU1"], None),
        (IbConfig(account="DU2"), ["DU1", "DU2"], None),
        (IbConfig(), ["DU1", "DU2"], "several managed accounts"),
        (IbConfig(account="DU3"), ["DU1"], "not managed"),
        (IbConfig(), ["U1"], "not a paper (DU...) account"),
        (IbConfig(port=7496), ["DU1"], "live port"),
        (IbConfig(live=True, port=7496), ["U1"], None),
    ],
)
def test_ib_identity_when_paper_expected_then_live_accounts_and_ports_refused(
    cfg: IbConfig, accounts: list[str], problem: str | None
) -> None:
    got = cfg.identity_problem(accounts)
    if problem is None:
        assert got is None
    else:
        assert got is not None and problem in got


def test_ib_venue_then_nyse_calendar_unless_the_file_names_one(tmp_path: Path) -> None:
    ib = '[venue]\nkind = "ib"\n'
    assert load_config(write_config(tmp_path, ib), env={}).session.calendar == "XNYS"
    named = ib + '[session]\ncalendar = "24/7"\n'
    assert load_config(write_config(tmp_path, named), env={}).session.calendar == "24/7"
    assert load_config(write_config(tmp_path), env={}).session.calendar == "24/7"
