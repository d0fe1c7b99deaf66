"""`tradeplane trace ID` and `tradeplane trace export` against a journal written by JournalStore."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from tradeplane.cli.main import app
from tradeplane.core.ids import client_order_id, intent_id
from tradeplane.journal.records import JournalRecord
from tradeplane.journal.store import JournalStore
from tradeplane.protocol.events import EventKind
from tradeplane.telemetry.context import (
    intent_context,
    risk_check_context,
    run_context,
    submit_context,
)
from tradeplane.telemetry.jaeger import parse_jaeger_json

runner = CliRunner()
DEP = "demo"
T0 = 1_700_000_000.0
FILLED, DENIED, REJECTED, UNSAMPLED = (intent_id(DEP, "s1", f"bar:{n}", 0) for n in range(4))
SUBMIT_CHAIN = ["strategy.intent", "risk.check", "broker.submit", "venue.ack"]


def rec(
    kind: str, ts: float, data: dict[str, Any], iid: str | None = None, **kw: Any
) -> JournalRecord:
    """A journal record about intent ``iid`` (and its order), or of the supervisor."""
    ids = {"intent_id": iid, "client_order_id": client_order_id(iid)} if iid else {}
    event_id = kw.pop("event_id", None) or f"{kind}/{iid}/{ts}"
    return JournalRecord(event_id, kind, ts, DEP, data, strategy="s1" if iid else None, **ids, **kw)


def contexts(iid: str, ratio: float = 1.0) -> tuple[str, str, str]:
    """The traceparents of an intent's strategy.intent, risk.check and broker.submit spans."""
    root = intent_context(DEP, iid, ratio=ratio).traceparent
    risk = risk_check_context(root, iid)
    submit = submit_context(risk.traceparent if risk else None, client_order_id(iid))
    assert risk is not None and submit is not None
    return root, risk.traceparent, submit.traceparent


def order(iid: str, t: float, *, ratio: float = 1.0, denied: bool = False) -> list[JournalRecord]:
    """An intent at ``t`` and its order up to being sent (or denied)."""
    root, risk, submit = contexts(iid, ratio)
    fields = {"intent_id": iid, "client_order_id": client_order_id(iid), "strategy": "s1"}
    fields |= {"symbol": "BTC-USDT", "side": "buy", "quantity": 2.0, "order_type": "limit"}
    fields["limit_price"] = 100.0
    intent_data = {**fields, "trigger": "bar", "ts": t + 0.010, "bar_recv_ts": t}
    out = [rec("intent", t + 0.010, intent_data, iid, traceparent=root)]
    if denied:
        data = {**fields, "reason": "max_position", "received_ts": t + 0.011}
        return [*out, rec("order_denied", t + 0.012, data, iid, traceparent=risk)]
    timing = {"risk_received_ts": t + 0.011, "approved_ts": t + 0.0115}
    timing["broker_received_ts"] = t + 0.012
    submitting = {**fields, "status": "submitting", "trace": timing}
    submitted = {**fields, "status": "submitted", "sent_ts": t + 0.0125}
    return [
        *out,
        rec("order_submitting", t + 0.012, submitting, iid, traceparent=submit),
        rec("order_submitted", t + 0.013, submitted, iid, traceparent=submit),
    ]


def venue(
    iid: str, kind: str, t: float, status: str, *, ratio: float = 1.0, **data: Any
) -> JournalRecord:
    """A venue event about the order at ``t``, received by the broker 1 ms later."""
    fill_id = data["fill"]["fill_id"] if "fill" in data else None
    data = {"status": status, "received_ts": t + 0.001, **data}
    event_id = f"{kind}/{fill_id}" if fill_id else None
    return rec(kind, t, data, iid, traceparent=contexts(iid, ratio)[2], event_id=event_id)


def fill(iid: str, t: float, fill_id: str, price: float, status: str) -> JournalRecord:
    data = {"fill_id": fill_id, "symbol": "BTC-USDT", "side": "buy", "quantity": 1.0}
    data |= {"price": price, "fee": 0.1, "ts": t, "liquidity": "taker"}
    return venue(iid, "order_filled", t, status, fill=data)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    state_dir = tmp_path / "state"
    started = {"run_id": "run1", "started_ts": T0 - 12, "mode": "paper", "venue": "sim"}
    with JournalStore.open(state_dir, DEP) as store:
        store.commit([rec("deployment_started", T0 - 10, started, event_id="started/run1")])
        store.commit(order(FILLED, T0))
        store.commit([venue(FILLED, "order_accepted", T0 + 0.020, "accepted")])
        store.commit([fill(FILLED, T0 + 0.030, "fA1", 100.0, "partially_filled")])
        store.commit([fill(FILLED, T0 + 0.040, "fA2", 100.5, "filled")])
        store.commit(order(DENIED, T0 + 1, denied=True))
        store.commit(order(REJECTED, T0 + 2))
        reason = {"reason": "insufficient margin"}
        store.commit([venue(REJECTED, "order_rejected", T0 + 2.02, "rejected", **reason)])
        store.commit(order(UNSAMPLED, T0 + 3, ratio=0.0))
        store.commit([venue(UNSAMPLED, "order_accepted", T0 + 3.02, "accepted", ratio=0.0)])
        health = {"component": "deployment", "previous": "starting", "health": "healthy"}
        store.commit([rec("health_changed", T0 + 5, health, event_id="health/1")])
    return state_dir


def trace(*args: str) -> Result:
    return runner.invoke(app, ["trace", *args])


def event_kinds(output: str) -> list[str]:
    """The kinds of the printed journal events (the last block), in printed order."""
    return [row.split()[2] for row in output.rstrip().split("\n\n")[-1].splitlines()[1:]]


def export(state: Path, out: Path, *args: str) -> dict[str, list[dict[str, Any]]]:
    result = trace(
        "export", "--state-dir", str(state), "--format", "jaeger-json", "--out", str(out), *args
    )
    assert result.exit_code == 0, result.output
    return parse_jaeger_json(out.read_text())


def tid(iid: str) -> str:
    return intent_context(DEP, iid).trace_id


def span_tree(output: str) -> list[tuple[int, str]]:
    """(depth, name) of the printed span rows, in printed order."""
    rows = output.split("\nspan ", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    return [((len(r) - len(r.lstrip())) // 2, r.split()[0]) for r in rows]


# --- trace ID ----------------------------------------------------------------------------------


@pytest.mark.parametrize("ident", [FILLED, client_order_id(FILLED)])
def test_trace_of_an_intent_or_client_order_id_prints_its_trace_and_span_tree(
    state: Path, ident: str
) -> None:
    result = trace(ident, "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    assert f"trace {tid(FILLED)}" in result.output
    assert f"open http://127.0.0.1:16686/trace/{tid(FILLED)}" in result.output
    assert span_tree(result.output) == [
        (0, "strategy.intent"),
        (1, "risk.check"),
        (2, "broker.submit"),
        (3, "venue.ack"),
        (3, "broker.fill"),
        (3, "broker.fill"),
    ]
    assert "decision=approved" in result.output and "fill 1.0@100.5" in result.output
    assert event_kinds(result.output) == [
        "intent",
        "order_submitting",
        "order_submitted",
        "order_accepted",
        "order_filled",
        "order_filled",
    ]


def test_trace_show_is_the_same_command(state: Path) -> None:
    assert trace("show", DENIED, DEP, "--state-dir", str(state)).output == (
        trace(DENIED, DEP, "--state-dir", str(state)).output
    )


def test_trace_of_a_denied_intent_shows_the_decision_and_reason(state: Path) -> None:
    result = trace(DENIED, "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    assert span_tree(result.output) == [(0, "strategy.intent"), (1, "risk.check")]
    assert "decision=denied reason=max_position" in result.output
    assert event_kinds(result.output) == ["intent", "order_denied"]


def test_trace_of_an_unsampled_intent_still_shows_it_and_says_so(state: Path) -> None:
    result = trace(UNSAMPLED, "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    assert "not sampled" in result.output
    assert [name for _, name in span_tree(result.output)] == SUBMIT_CHAIN


def test_an_unknown_id_exits_1_naming_it(state: Path) -> None:
    result = trace("nosuchintent", "--state-dir", str(state))
    assert result.exit_code == 1
    assert "no intent or client order 'nosuchintent'" in result.output


def test_trace_json_is_one_document(state: Path) -> None:
    result = trace(client_order_id(REJECTED), "--state-dir", str(state), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["trace_id"] == tid(REJECTED) and doc["intent_id"] == REJECTED
    assert doc["client_order_id"] == client_order_id(REJECTED)
    assert [s["name"] for s in doc["spans"]] == SUBMIT_CHAIN
    assert doc["spans"][-1]["status"] == "error"
    assert [e["kind"] for e in doc["events"]][-1] == "order_rejected"


def test_without_a_deployment_the_journal_holding_the_id_is_found(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".tradeplane" / "empty").mkdir(parents=True)  # no journal: not searched
    with JournalStore.open(tmp_path / ".tradeplane" / "other", "other") as store:
        store.commit([JournalRecord("n", EventKind.BAR_SUMMARY, T0, "other", {})])
    state.rename(tmp_path / ".tradeplane" / DEP)
    monkeypatch.chdir(tmp_path)
    result = trace(client_order_id(FILLED))
    assert result.exit_code == 0, result.output
    assert f"trace {tid(FILLED)}" in result.output
    missing = trace("nosuchintent")
    assert missing.exit_code == 1
    assert "any journal in .tradeplane/ (searched: demo, other)" in missing.output


def test_without_a_deployment_or_any_journal_it_says_what_to_give(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = trace(FILLED)
    assert result.exit_code == 1
    assert "give the deployment NAME, --state-dir or --config" in result.output


def test_trace_help_lists_show_and_export() -> None:
    result = trace("--help")
    assert result.exit_code == 0
    commands = result.output.split("Commands", 1)[1]
    assert "show " in commands and "export " in commands


# --- trace export ------------------------------------------------------------------------------


def test_export_writes_a_private_jaeger_file_with_one_trace_per_intent(
    state: Path, tmp_path: Path
) -> None:
    out = tmp_path / "traces.json"
    traces = export(state, out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    run = run_context(DEP, "run1").trace_id
    counts = {t: len(spans) for t, spans in traces.items()}
    assert counts == {tid(FILLED): 6, tid(DENIED): 2, tid(REJECTED): 4, tid(UNSAMPLED): 4, run: 2}
    result = trace("export", "--state-dir", str(state), "--out", str(out))
    assert "exported 5 traces (18 spans" in result.output


@pytest.mark.parametrize("iid", [FILLED, DENIED, REJECTED, UNSAMPLED])
def test_export_links_each_span_to_its_parent(state: Path, tmp_path: Path, iid: str) -> None:
    spans = export(state, tmp_path / "t.json")[tid(iid)]
    root, risk, submit = (tp.split("-")[2] for tp in contexts(iid))
    ids = {s["operationName"]: s["spanID"] for s in spans}
    assert ids["strategy.intent"] == root and ids["risk.check"] == risk
    assert ids.get("broker.submit", submit) == submit
    parent_of = {
        "strategy.intent": None,
        "risk.check": root,
        "broker.submit": risk,
        "venue.ack": submit,
        "broker.fill": submit,
    }
    for s in spans:
        refs = s["references"]
        assert (refs[0]["spanID"] if refs else None) == parent_of[s["operationName"]], s
        assert all(r["refType"] == "CHILD_OF" and r["traceID"] == tid(iid) for r in refs)
    fills = [s for s in spans if s["operationName"] == "broker.fill"]
    assert len(fills) == (2 if iid == FILLED else 0)
    assert len({s["spanID"] for s in spans}) == len(spans)


def test_export_of_given_intents_holds_only_their_traces(state: Path, tmp_path: Path) -> None:
    traces = export(
        state, tmp_path / "t.json", "--intent", DENIED, "--intent", client_order_id(FILLED)
    )
    assert {t: len(s) for t, s in traces.items()} == {tid(DENIED): 2, tid(FILLED): 6}


def test_export_since_after_everything_has_no_intent_traces(state: Path, tmp_path: Path) -> None:
    assert export(state, tmp_path / "t.json", "--since", iso(T0 + 100)) == {}


def test_export_since_mid_order_still_finds_its_trace_and_run(state: Path, tmp_path: Path) -> None:
    traces = export(
        state,
        tmp_path / "t.json",
        "--since",
        iso(T0 + 0.025),
        "--until",
        iso(T0 + 1.5).replace("+00:00", ""),
    )
    fills = traces[tid(FILLED)]
    submit = contexts(FILLED)[2].split("-")[2]
    assert [s["operationName"] for s in fills] == ["broker.fill", "broker.fill"]
    assert {s["references"][0]["spanID"] for s in fills} == {submit}
    assert {t: len(s) for t, s in traces.items()} == {tid(FILLED): 2, tid(DENIED): 2}
    later = export(state, tmp_path / "t.json", "--since", iso(T0 + 4))
    (health,) = later[run_context(DEP, "run1").trace_id]
    assert health["operationName"] == "supervisor.health"
    assert health["references"][0]["spanID"] == run_context(DEP, "run1").span_id


def test_export_with_a_bad_since_fails_clearly(state: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    result = trace("export", "--state-dir", str(state), "--out", str(out), "--since", "yesterday")
    assert result.exit_code == 2
    assert "--since 'yesterday' is not an ISO-8601 time" in result.output
    assert not out.exists()


def test_export_of_an_unknown_intent_exits_1(state: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.json"
    result = trace("export", DEP, "--state-dir", str(state), "--out", str(out), "--intent", "nope")
    assert result.exit_code == 1
    assert "no intent or client order 'nope'" in result.output and not out.exists()


def test_export_names_services_after_the_configs_service_name(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    (tmp_path / "s.py").write_text("")
    config = tmp_path / "deploy.toml"
    config.write_text(
        f'[deployment]\nname = "{DEP}"\nstate_dir = "{state}"\n'
        '[telemetry]\nservice_name = "desk"\n'
        '[[strategies]]\nname = "s"\npath = "s.py"\nclass_name = "S"\n'
    )
    out = tmp_path / "t.json"
    result = trace("export", "--config", str(config), "--out", str(out), "--intent", DENIED)
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(out.read_text())["data"]
    services = {p["serviceName"] for p in entry["processes"].values()}
    assert services == {"desk-strategy", "desk-risk"}


def test_without_a_deployment_a_running_ones_journal_is_searched_not_its_local_copy(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contextlib

    from tradeplane.cli import trace_cmd
    from tradeplane.journal.reader import JournalReader

    stale = tmp_path / ".tradeplane" / DEP  # an old copy here, without the order
    with JournalStore.open(stale, DEP) as store:
        store.commit([JournalRecord("n", EventKind.BAR_SUMMARY, T0, DEP, {})])
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(trace_cmd, "cluster", lambda address: contextlib.nullcontext(True))
    with JournalReader.open(state) as running:  # stands in for the running journal's reads
        monkeypatch.setattr(trace_cmd, "_running_journals", lambda: {DEP: running})
        result = trace(client_order_id(FILLED))
        missing = trace("nosuchintent")
    assert result.exit_code == 0, result.output
    assert f"trace {tid(FILLED)}" in result.output
    assert missing.exit_code == 1
    assert "no intent or client order 'nosuchintent' in the journal of the running demo" in (
        missing.output
    )
