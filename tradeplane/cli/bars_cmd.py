"""``tradeplane bars fetch okx|binance|ib SYMBOL --from T --to T --out FILE``: a venue's 1-minute
bar history, downloaded through its adapter, into a CSV or Parquet bars file a backtest reads.

Only closed bars, de-duplicated and in time order; paced below the venue's request limit and
retried with the adapters' backoff on rate limits and brief outages; the file appears only once
the whole range is fetched. ``--rest-url`` points at another endpoint (a stand-in, a proxy).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tradeplane.backtest.bars_file import parse_ts
from tradeplane.cli.output import err, stdout
from tradeplane.core.model import Bar

if TYPE_CHECKING:
    from tradeplane.backtest.bars_out import BarWriter
    from tradeplane.venues.history import Paced

bars_app = typer.Typer(no_args_is_help=True, add_completion=False)

REQUEST_TIMEOUT_S = 15.0


class Venue(StrEnum):
    OKX = "okx"
    BINANCE = "binance"
    IB = "ib"


DEFAULT_REST = {Venue.OKX: "https://www.okx.com", Venue.BINANCE: "https://data-api.binance.vision"}

History = Callable[..., AsyncIterator[list[Bar]]]


def _fetcher(venue: Venue) -> tuple[History, float]:
    if venue is Venue.OKX:
        from tradeplane.venues.okx import history as okx

        return okx.okx_history, okx.MIN_INTERVAL_S
    from tradeplane.venues.binance import history as binance

    return binance.binance_history, binance.MIN_INTERVAL_S


@dataclass(frozen=True)
class IbEndpoint:
    host: str = "127.0.0.1"
    port: int = 7497
    client_id: int = 90  # apart from a deployment's broker (1) and feed (2)


async def fetch(
    venue: Venue,
    symbol: str,
    start: datetime,
    end: datetime,
    out: Path,
    rest_url: str | None = None,
    *,
    ib: IbEndpoint | None = None,
    min_interval_s: float | None = None,
    progress: Callable[[BarWriter], None] | None = None,
) -> dict[str, Any]:
    """Fetch ``symbol``'s closed 1-minute bars opening in ``[start, end)`` into ``out``; the
    summary. ``min_interval_s``: the least time between two requests (default: the venue's)."""
    from tradeplane.backtest.bars_out import BarWriter  # pyarrow: loaded only to write

    async with _pages(venue, symbol, start, end, rest_url, ib, min_interval_s) as (pages, paced):
        with BarWriter(out) as writer:
            async for page in pages:
                writer.write(page)
                if progress is not None:
                    progress(writer)
    return {
        "venue": venue.value,
        "symbol": symbol,
        "out": str(out),
        "format": writer.format,
        "bars": writer.written,
        "duplicates_dropped": writer.dropped,
        "first_ts": None if writer.first is None else writer.first.isoformat(),
        "last_ts": None if writer.last_ts is None else writer.last_ts.isoformat(),
        "requests": paced.requests,
        "retries": paced.retries,
    }


@asynccontextmanager
async def _pages(
    venue: Venue,
    symbol: str,
    start: datetime,
    end: datetime,
    rest_url: str | None,
    ib: IbEndpoint | None,
    min_interval_s: float | None,
) -> AsyncIterator[tuple[AsyncIterator[list[Bar]], Paced]]:
    # The venues' HTTP and IB clients are imported here: only when a venue is asked.
    from tradeplane.venues.history import HistoryError, Paced

    if venue is Venue.IB:
        import ib_async

        from tradeplane.venues.ib import history as ib_history

        where = ib or IbEndpoint()
        paced = Paced(ib_history.MIN_INTERVAL_S if min_interval_s is None else min_interval_s)
        client = ib_async.IB()
        try:
            await client.connectAsync(
                where.host, where.port, clientId=where.client_id, readonly=True, timeout=10
            )
        except (TimeoutError, ConnectionError, OSError) as exc:
            client.disconnect()
            raise HistoryError(
                f"IB at {where.host}:{where.port} (client id {where.client_id}): {exc!r}"
            ) from None
        try:
            yield ib_history.ib_history(client, symbol, start, end, paced), paced
        finally:
            client.disconnect()
        return
    history, default_interval_s = _fetcher(venue)
    import aiohttp

    paced = Paced(default_interval_s if min_interval_s is None else min_interval_s)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        url = rest_url or DEFAULT_REST[venue]
        yield history(http, url, symbol, start, end, paced), paced


def _time(text: str, option: str) -> datetime:
    try:
        return parse_ts(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


@bars_app.command("fetch")
def fetch_command(
    venue: Annotated[Venue, typer.Argument(help="Where the history comes from.")],
    symbol: Annotated[str, typer.Argument(help="The venue's symbol: BTC-USDT, BTCUSDT, AAPL.")],
    start: Annotated[
        str, typer.Option("--from", help="First bar open time, UTC (ISO with Z, or epoch s).")
    ],
    end: Annotated[str, typer.Option("--to", help="End (exclusive) of the open times, UTC.")],
    out: Annotated[Path, typer.Option("--out", help="The file to write: .csv or .parquet.")],
    rest_url: Annotated[
        str | None, typer.Option("--rest-url", help="The venue's REST endpoint (default: its own).")
    ] = None,
    ib_host: Annotated[str, typer.Option("--ib-host", help="TWS / Gateway host (ib).")] = (
        IbEndpoint.host
    ),
    ib_port: Annotated[int, typer.Option("--ib-port", help="TWS / Gateway port (ib).")] = (
        IbEndpoint.port
    ),
    ib_client_id: Annotated[
        int, typer.Option("--ib-client-id", help="API client id, unused by others (ib).")
    ] = IbEndpoint.client_id,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Download 1-minute bars (closed only, de-duplicated, in order) into a bars file."""
    first, last = _time(start, "--from"), _time(end, "--to")
    if last <= first:
        raise typer.BadParameter("--to must be after --from", param_hint="--to")
    from tradeplane.backtest.bars_out import bars_format

    try:
        bars_format(out)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--out") from None
    ib = IbEndpoint(ib_host, ib_port, ib_client_id)
    from tradeplane.venues.history import HistoryError

    try:
        summary = asyncio.run(fetch(venue, symbol, first, last, out, rest_url, ib=ib))
    except HistoryError as exc:
        err.print(f"bars fetch {venue.value} {symbol}: {exc}")
        raise typer.Exit(1) from None
    if as_json:
        stdout.write(json.dumps(summary) + "\n")
        return
    stdout.write(
        f"{summary['bars']} bars of {symbol} from {venue.value} "
        f"({summary['first_ts']} .. {summary['last_ts']}) -> {out}"
        f" [{summary['requests']} requests, {summary['retries']} retried]\n"
    )
