"""``tradeplane promote`` beside real deployments on Ray: the paper deployment's journal read
through its journal actor while it runs, and ``promotion_checked`` written by the live
deployment's one writer: its state dir before it ever ran (a journal its first start opens),
its journal actor while it runs. Paper and live are IB deployments against two fake TWSs (a
``DU`` paper account, a ``U`` live one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import eventually
from tests.integration.conftest import make_config
from tests.integration.harness import (
    STRATEGIES,
    live_status,
    market_moving,
    running,
    strategy,
)
from tests.standins.tws import FakeTws
from tradeplane.cli import promote_cmd
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.errors import OperationalError
from tradeplane.core.promotion_config import code_hash
from tradeplane.journal.reader import JournalReader
from tradeplane.protocol.events import EventKind

pytestmark = pytest.mark.usefixtures("ray_session")


def ib_deployment(
    state: Path, fake: FakeTws, client_id: int, *, live: bool, **sections: Any
) -> TradeplaneConfig:
    ib = {
        "host": "127.0.0.1",
        "port": fake.port,
        "client_id": client_id,
        "connect_timeout_s": 2,
        "live": live,
    }
    return make_config(
        state,
        mode="live" if live else "paper",
        symbols=("SPY",),
        venue={"kind": "ib", "ib": ib},
        session={"calendar": "24/7"},  # the fake TWS trades at any hour
        # Never trades: the gates are about the record, not the orders.
        strategies=[strategy("flip", "Flipper", ["SPY"], every=10_000)],
        **sections,
    )


def check(live: TradeplaneConfig, paper: TradeplaneConfig) -> tuple[Any, dict[str, Any]]:
    verdict = promote_cmd.evaluate(live, paper, attached=True)
    payload = promote_cmd.record_payload(verdict, live, Path("live.toml"), paper, Path("p.toml"))
    where = promote_cmd.journal_verdict(live, payload, attached=True, state_dir=None)
    return verdict, where


def test_promote_beside_running_deployments_reads_and_writes_through_their_journal_actors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        FakeTws() as paper_tws,
        FakeTws(accounts=("U7654321",)) as live_tws,
        market_moving(lambda: (paper_tws.advance_bars(12), live_tws.advance_bars(12)), 0.4),
    ):
        paper_tws.set_price("SPY", 500.0)
        live_tws.set_price("SPY", 500.0)
        paper = ib_deployment(tmp_path / "paper", paper_tws, 41, live=False)
        live = ib_deployment(
            tmp_path / "live", live_tws, 51, live=True, promotion={"clean_starts": 1}
        )
        with running(paper):
            # The paper journal is read on its node through its actor, never from this disk.
            def no_local_read(*args: Any, **kwargs: Any) -> Any:
                raise OperationalError("read locally")

            with monkeypatch.context() as m:
                m.setattr(promote_cmd.JournalReader, "open", no_local_read)
                verdict, where = check(live, paper)
            assert verdict.passed, verdict.failures
            starts = next(g for g in verdict.gates if g.name == "clean starts").evidence
            assert starts["journaled_starts"] == 1 and starts["starts"][0]["clean"]
            session = next(g for g in verdict.gates if g.name == "kill switch").evidence
            assert "not ended" in session["session"]["ended"]  # the paper session runs on
            assert where["via"] == "state dir"  # the live deployment never ran: its dir
            # What the paper run traded, as its deployment_started recorded it.
            [code] = next(g for g in verdict.gates if g.name == "strategy code").evidence[
                "strategies"
            ]
            assert code["ran"] == code_hash(Path(STRATEGIES).read_text(encoding="utf-8"))
        with running(live) as run:
            eventually(  # preflight --strict warns until the metrics endpoint serves
                lambda: (live_status(run.name).get("telemetry") or {}).get("metrics_endpoint"),
                what="the live deployment's metrics endpoint",
            )
            verdict, where = check(live, paper)
            assert verdict.passed, verdict.failures
            assert where["via"] == "journal actor"
        with JournalReader.open(tmp_path / "live", deployment=live.deployment.name) as j:
            lines = j.events(
                [EventKind.PROMOTION_CHECKED, EventKind.DEPLOYMENT_STARTED],
            )
    kinds = [line["kind"] for line in lines]
    # The journal the first check created is the one the live deployment's start opened.
    assert kinds == ["promotion_checked", "deployment_started", "promotion_checked"], kinds
    assert [line["seq"] for line in lines][-1] == where["seq"]
    assert all(line["data"]["passed"] for line in lines if line["kind"] == "promotion_checked")
