"""A deployment's journal to the report's data (``tradeplane.report.journal_data``)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest

from tests.report_samples import CAPITAL, DEP, T0, order_records, summary, write_journal
from tradeplane.journal.reader import JournalReader
from tradeplane.journal.records import JournalRecord, StateWrite
from tradeplane.journal.store import JournalStore
from tradeplane.protocol.events import STRATEGY_SNAPSHOT_SCOPE
from tradeplane.report.journal_data import PAGE, read_journal
from tradeplane.report.model import ReportData


def data_of(state: Path, capital: dict[str, float] | None = CAPITAL) -> ReportData:
    with JournalReader.open(state, deployment=DEP) as reader:
        return read_journal(reader, capital=capital)


def test_equity_is_rebuilt_from_fills_marked_at_journaled_closes(state: Path) -> None:
    total, s1, s2 = data_of(state).equity
    assert [total.name, s1.name, s2.name] == ["total", "s1", "s2"]
    assert total.values[0] == pytest.approx(150_000.0)
    # s1 bought 100 AAA at 100 and sold at 110 (2 fees of 1); s2 holds 20 BBB bought at 50,
    # marked at 40 by the last summary (1 fee).
    assert s1.values[-1] == pytest.approx(100_998.0)
    assert s2.values[-1] == pytest.approx(49_799.0)
    assert total.values[-1] == pytest.approx(150_797.0)
    assert total.ts[-1] == T0 + 100


def test_without_capital_the_curves_are_pnl_from_zero_and_the_page_says_so(state: Path) -> None:
    data = data_of(state, capital=None)
    assert data.equity_is_pnl
    assert data.equity[0].values[0] == 0.0
    assert data.equity[0].values[-1] == pytest.approx(797.0)
    assert any("--config" in n for n in data.notes)


def test_fills_are_marked_once_each_on_prices_from_bar_summaries(state: Path) -> None:
    data = data_of(state)
    assert data.price_source == "bar summaries"
    assert sorted(data.prices) == ["AAA", "BBB"]
    assert data.prices["AAA"].values == (100.0, 105.0, 110.0)
    assert [(f.symbol, f.side, f.price, f.strategy) for f in data.fills] == [
        ("AAA", "buy", 100.0, "s1"),
        ("BBB", "buy", 50.0, "s2"),
        ("AAA", "sell", 110.0, "s1"),
    ]


def test_a_fill_journaled_twice_counts_once(tmp_path: Path) -> None:
    state = tmp_path / "state"
    recs = order_records("s1", 1, T0, "AAA", "buy", 10.0, 100.0)
    with JournalStore.open(state, DEP) as store:
        store.commit(recs)
        store.commit([replace(recs[-1], event_id="order_filled/again", ts=T0 + 2)])
    data = data_of(state, capital={"s1": 1000.0})
    assert len(data.fills) == 1
    assert data.equity[0].values[-1] == pytest.approx(999.0)  # one fee, not two


def test_without_bars_or_summaries_the_price_comes_from_the_fills(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with JournalStore.open(state, DEP) as store:
        store.commit(order_records("s1", 1, T0, "AAA", "buy", 10.0, 100.0))
        store.commit(order_records("s1", 2, T0 + 5, "AAA", "sell", 10.0, 101.0))
    data = data_of(state)
    assert data.price_source == "fills"
    assert data.prices["AAA"].values == (100.0, 101.0)


def test_denials_are_counted_by_reason_most_frequent_first(state: Path) -> None:
    assert data_of(state).denials == {"max_position": 2, "price_deviation": 1}


def test_health_changes_in_order_last_state_lasting_to_the_journals_end(state: Path) -> None:
    data = data_of(state)
    assert [(h.ts - T0, h.health) for h in data.health] == [
        (1, "ok"),
        (30, "feed_silent"),
        (45, "ok"),
    ]
    assert data.health[1].reason == "no bar for 12 s"
    assert data.health_until == T0 + 100


def test_tick_to_order_is_bar_arrival_to_send_per_order(state: Path) -> None:
    assert data_of(state).tick_to_order_ms == pytest.approx([4.0, 4.0, 4.0], abs=1e-3)


def test_an_order_without_its_bars_arrival_has_no_latency_sample(tmp_path: Path) -> None:
    state = tmp_path / "state"
    submitting, submitted, filled = order_records("s1", 1, T0, "AAA", "buy", 10.0, 100.0)
    data = dict(submitting.data)
    data["intent"] = {**data["intent"], "bar_recv_ts": None}  # a timer's intent: no bar
    with JournalStore.open(state, DEP) as store:
        store.commit([replace(submitting, data=data), submitted, filled])
    assert data_of(state).tick_to_order_ms == []


def test_the_header_facts_name_the_run(state: Path) -> None:
    facts = dict(data_of(state).facts)
    assert facts["mode / venue"] == "paper / sim"
    assert facts["fills"] == "3"
    assert facts["denials"] == "3"
    assert facts["health now"] == "ok"
    assert facts["live total return"] == "+0.53%"
    assert facts["tick to order"].startswith("p50 4.0 ms")


def test_a_journal_longer_than_a_page_is_read_whole(tmp_path: Path) -> None:
    state = tmp_path / "state"
    n = PAGE + 7
    with JournalStore.open(state, DEP) as store:
        store.commit([summary(T0 + i, {"AAA": 100.0 + i % 3}) for i in range(n)])
    data = data_of(state)
    assert data.prices["AAA"].ts[-1] == T0 + n - 1
    assert len(data.prices["AAA"]) <= 2000  # downsampled, last kept


def test_reading_leaves_the_journal_files_unchanged(state: Path) -> None:
    files = [p for p in sorted(state.iterdir()) if p.is_file()]

    def digests() -> dict[str, str]:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}

    before = digests()
    data_of(state)
    assert digests() == before


def snapshot(strategy: str, taken: float, capital: float, marks: dict[str, float]) -> StateWrite:
    portfolio = {"starting_cash": capital, "cash": capital, "fees": 0.0, "books": {}}
    value = {"strategy": strategy, "taken_ts": taken, "portfolio": {**portfolio, "marks": marks}}
    return StateWrite(STRATEGY_SNAPSHOT_SCOPE, strategy, value, taken)


def test_capital_comes_from_the_strategies_snapshots_when_no_config_gives_it(
    tmp_path: Path,
) -> None:
    state = write_journal(tmp_path / "state")
    with JournalStore.open(state, DEP) as store:
        snaps = [snapshot("s1", T0 + 100, 100_000.0, {}), snapshot("s2", T0 + 100, 50_000.0, {})]
        store.commit([], snaps)
    data = data_of(state, capital=None)
    assert not data.equity_is_pnl
    assert data.equity[0].values[-1] == pytest.approx(150_797.0)


def test_the_curve_ends_at_the_strategies_own_last_marks(tmp_path: Path) -> None:
    state = write_journal(tmp_path / "state")
    with JournalStore.open(state, DEP) as store:
        # s2 saw BBB at 45 after the last bar summary (which said 40): its books end there.
        store.commit([], [snapshot("s2", T0 + 105, 50_000.0, {"BBB": 45.0})])
    total, _, s2 = data_of(state).equity
    assert total.ts[-1] == T0 + 105
    assert s2.values[-1] == pytest.approx(49_899.0)


def test_tick_to_orders_stages_add_up_to_it(state: Path) -> None:
    from tradeplane.report.journal_data import STAGES

    with JournalReader.open(state, deployment=DEP) as reader:
        from tradeplane.report.journal_data import JournalExtractor, journal_events

        ex = JournalExtractor(CAPITAL)
        for event in journal_events(reader, ("order_submitting", "order_submitted")):
            ex.feed(event)
    assert len(ex.stages_ms) == 3 and len(ex.stages_ms[0]) == len(STAGES)
    assert ex.stages_ms[0] == pytest.approx((1.0, 1.0, 0.5, 1.5), abs=1e-3)
    assert sum(ex.stages_ms[0]) == pytest.approx(ex.tick_to_order_ms[0], abs=1e-6)
    facts = dict(data_of(state).facts)
    assert facts["its stages, p50"].startswith("bar to intent 1.0 ms, intent to approved 1.0 ms")


def test_deaths_halts_and_starts_are_kept_as_incidents(state: Path) -> None:
    incidents = [(i.ts - T0, i.kind, i.detail) for i in data_of(state).incidents]
    assert incidents == [
        (0, "deployment_started", ""),
        (31, "actor_died", "feed: SIGKILL"),
        (100, "deployment_stopped", "operator"),
    ]


def test_bars_arriving_together_make_one_equity_point_at_their_last_marks(tmp_path: Path) -> None:
    from tests.report_samples import _rec

    state = tmp_path / "state"

    def bar(symbol: str, close: float, t: float, minute: int) -> JournalRecord:
        data = {"symbol": symbol, "ts": f"2023-11-14T22:{minute}:00+00:00", "close": close}
        return _rec("bar", t, data, f"bar/{symbol}/{minute}")

    with JournalStore.open(state, DEP) as store:
        store.commit(order_records("s1", 1, T0, "AAA", "buy", 10.0, 100.0))
        batch = [bar("AAA", 101.0, T0 + 60, 13), bar("BBB", 5.0, T0 + 60, 13)]
        store.commit([*batch, bar("AAA", 102.0, T0 + 60, 14)])
    total = data_of(state, capital={"s1": 1000.0}).equity[0]
    assert total.ts.count(T0 + 60) == 1
    assert total.values[-1] == pytest.approx(1000.0 - 1.0 + 10 * 2.0)
