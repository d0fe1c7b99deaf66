"""``tradeplane bars fetch`` against the loopback stand-ins of OKX and Binance (real HTTP on
127.0.0.1, no Ray): paged, paced, retried on rate limits, closed bars only, de-duplicated, in
order, written as CSV or Parquet a backtest reads back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.standins.binance import BinanceStandin
from tests.standins.okx import OkxStandin
from tests.standins.tws import FakeTws
from tradeplane.backtest.bars_file import read_csv_bars
from tradeplane.backtest.bars_parquet import read_parquet_bars
from tradeplane.cli.bars_cmd import IbEndpoint, Venue, fetch
from tradeplane.cli.main import app

runner = CliRunner()
OKX_START = datetime(2024, 6, 1, tzinfo=UTC)  # the stand-in's default clock
BINANCE_START = datetime(2024, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def okx_closes(okx: OkxStandin, symbol: str) -> dict[datetime, float]:
    return {
        datetime.fromtimestamp(int(r[0]) / 1000, tz=UTC): float(r[4])
        for r in okx._rows[symbol]  # the stand-in's closed bars
    }


def test_okx_range_over_many_pages_then_every_closed_bar_once_in_order(tmp_path: Path) -> None:
    with OkxStandin(("BTC-USDT",), history_bars=2500) as okx:
        start, end = OKX_START - 2345 * MINUTE, OKX_START + 5 * MINUTE  # past the open minute
        out = tmp_path / "btc.csv"
        summary = asyncio.run(fetch(Venue.OKX, "BTC-USDT", start, end, out, okx.rest_url))
        closes = okx_closes(okx, "BTC-USDT")
        paths = {q.get("after") for q in okx.rest_requests}
    bars = list(read_csv_bars(out))
    assert [b.ts for b in bars] == [start + i * MINUTE for i in range(2345)]  # not the open one
    assert all(b.close == closes[b.ts] for b in bars)
    assert summary["bars"] == 2345 and summary["requests"] == 24 and len(paths) == 24


def test_okx_rate_limited_then_waits_and_retries_without_losing_a_page(tmp_path: Path) -> None:
    with OkxStandin(("BTC-USDT",)) as okx:
        okx.rate_limit(2, http_429=True)
        start = OKX_START - 150 * MINUTE
        out = tmp_path / "btc.parquet"
        summary = asyncio.run(fetch(Venue.OKX, "BTC-USDT", start, OKX_START, out, okx.rest_url))
    assert summary["retries"] == 2
    assert [b.ts for b in read_parquet_bars(out)] == [start + i * MINUTE for i in range(150)]


def test_binance_range_past_now_then_pages_of_1000_closed_bars_only(tmp_path: Path) -> None:
    with BinanceStandin(("BTCUSDT",), history_minutes=2500) as bn:
        start = BINANCE_START - 2400 * MINUTE
        out = tmp_path / "btc.parquet"
        end = BINANCE_START + 10 * MINUTE
        summary = asyncio.run(fetch(Venue.BINANCE, "BTCUSDT", start, end, out, bn.rest_url))
        starts = [q["startTime"] for q in bn.rest_requests if "startTime" in q]
    bars = list(read_parquet_bars(out))
    # The minute forming at the stand-in's clock is not closed: never written.
    assert [b.ts for b in bars] == [start + i * MINUTE for i in range(2400)]
    assert summary["bars"] == 2400 and len(starts) == 3


def test_binance_429_then_retried_after_its_retry_after(tmp_path: Path) -> None:
    with BinanceStandin(("BTCUSDT",)) as bn:
        bn.rate_limit(1, retry_after_s=0)
        start = BINANCE_START - 30 * MINUTE
        out = tmp_path / "btc.csv"
        summary = asyncio.run(
            fetch(Venue.BINANCE, "BTCUSDT", start, BINANCE_START, out, bn.rest_url)
        )
    assert summary["retries"] == 1 and summary["bars"] == 30
    assert len(list(read_csv_bars(out))) == 30


def test_cli_fetch_then_file_and_summary(tmp_path: Path) -> None:
    out = tmp_path / "eth.csv"
    with OkxStandin(("ETH-USDT",)) as okx:
        result = runner.invoke(
            app,
            [
                "bars", "fetch", "okx", "ETH-USDT",
                "--from", "2024-05-31T23:00:00Z", "--to", "2024-06-01T00:00:00Z",
                "--out", str(out), "--rest-url", okx.rest_url, "--json",
            ],
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert '"bars": 60' in result.output
    assert len(list(read_csv_bars(out))) == 60


def test_cli_unknown_symbol_then_exit_1_with_the_venue_reason_and_no_file(tmp_path: Path) -> None:
    out = tmp_path / "nope.csv"
    with OkxStandin(("ETH-USDT",)) as okx:
        result = runner.invoke(
            app,
            [
                "bars", "fetch", "okx", "NOPE-USDT", "--from", "2024-05-31T23:00:00Z",
                "--to", "2024-06-01T00:00:00Z", "--out", str(out), "--rest-url", okx.rest_url,
            ],
        )  # fmt: skip
    assert result.exit_code == 1
    assert "51001" in result.output and not out.exists()
    assert list(tmp_path.iterdir()) == []  # no partial file left either


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--from", "2024-06-01T00:00:00Z", "--to", "2024-05-31T00:00:00Z"], "--to must be"),
        (["--from", "2024-06-01T00:00:00", "--to", "2024-06-02T00:00:00Z"], "no time zone"),
    ],
)
def test_cli_bad_range_then_usage_error(tmp_path: Path, args: list[str], reason: str) -> None:
    out = str(tmp_path / "x.csv")
    result = runner.invoke(app, ["bars", "fetch", "okx", "BTC-USDT", *args, "--out", out])
    assert result.exit_code == 2 and reason in result.output


def test_cli_unknown_extension_then_usage_error(tmp_path: Path) -> None:
    out = str(tmp_path / "x.json")
    args = ["--from", "2024-06-01T00:00:00Z", "--to", "2024-06-02T00:00:00Z", "--out", out]
    result = runner.invoke(app, ["bars", "fetch", "okx", "BTC-USDT", *args])
    assert result.exit_code == 2 and ".parquet" in result.output


def test_ib_days_through_the_fake_tws_then_one_request_a_day_closed_bars_in_order(
    tmp_path: Path,
) -> None:
    # TWS's clock is the fake's bar clock, a day ahead of ours: what is past it is not closed.
    now = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=1)
    start, out = now - timedelta(hours=50), tmp_path / "spy.parquet"

    async def main() -> dict[str, Any]:
        async with FakeTws(bar_start=int(now.timestamp())) as fake:
            fake.set_price("SPY", 500.0)
            where = IbEndpoint("127.0.0.1", fake.port, 91)
            end = now + timedelta(hours=3)
            return await fetch(Venue.IB, "SPY", start, end, out, ib=where, min_interval_s=0)

    summary = asyncio.run(main())
    bars = list(read_parquet_bars(out))
    assert [b.ts for b in bars] == [start + i * MINUTE for i in range(50 * 60)]
    assert {b.close for b in bars} == {500.0}
    assert summary["requests"] == 3  # 24 h, 24 h, 2 h (up to TWS's clock)


def test_ib_unknown_host_then_exit_1_naming_where(tmp_path: Path) -> None:
    out = tmp_path / "spy.csv"
    result = runner.invoke(
        app,
        [
            "bars", "fetch", "ib", "SPY", "--from", "2026-01-05T14:30:00Z",
            "--to", "2026-01-05T21:00:00Z", "--out", str(out), "--ib-port", "9",
        ],
    )  # fmt: skip
    assert result.exit_code == 1 and "127.0.0.1:9" in result.output and not out.exists()
