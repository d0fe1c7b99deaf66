"""``tradeplane preflight``: is this deployment ready to trade? Read-only, safe while it runs.

Each check is ``ok``, ``warn`` or ``fail``; the deployment is ready when nothing failed (and,
with ``--strict``, nothing warned). Nothing here writes: the journal is opened read-only, the sim
venue's database read-only (or, while the deployment runs, its broker is asked), and the
reconciliation is a preview that journals nothing. A running deployment's state dir is read by
its journal on the state node (``JournalApi.read_preflight``), so preflight answers the same from
any node; a stopped one whose state dir another node holds is not ready, and says which node.
"""

from __future__ import annotations

import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tradeplane.actors.journal_reads import FAIL, OK, WARN, preflight_state
from tradeplane.cli.operator import call_running_within
from tradeplane.config.models import Mode, TradeplaneConfig
from tradeplane.core.errors import OperationalError, TransientError
from tradeplane.core.reconcile import Holdings, expected_from_journal, reconcile
from tradeplane.core.session import make_calendar
from tradeplane.protocol.api import SupervisorApi

Facts = dict[str, Any]
"""What the journal says (``preflight_state``'s ``facts``): risk state, kill switch, positions,
open orders, last reconciliation."""


@dataclass
class Check:
    name: str
    status: str
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class PreflightResult:
    deployment: str
    venue: str
    strict: bool
    checks: list[Check]

    @property
    def ready(self) -> bool:
        bad = (FAIL, WARN) if self.strict else (FAIL,)
        return not any(c.status in bad for c in self.checks)

    @property
    def reasons(self) -> list[str]:
        bad = (FAIL, WARN) if self.strict else (FAIL,)
        return [f"{c.name}: {c.detail}" for c in self.checks if c.status in bad]

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "venue": self.venue,
            "strict": self.strict,
            "ready": self.ready,
            "reasons": self.reasons,
            "checks": [asdict(c) for c in self.checks],
        }


def run_preflight(
    cfg: TradeplaneConfig,
    venue: str,
    *,
    strict: bool = False,
    require_market_open: bool = False,
    running: Any | None = None,
    now: float | None = None,
    state: dict[str, Any] | None = None,
    state_dir: Path | None = None,
    held_elsewhere: str | None = None,
) -> PreflightResult:
    """``running`` is the deployment's supervisor handle when it is up (asked, never changed).

    The state dir is read here (``state_dir``, default the config's) unless ``state`` is given:
    ``preflight_state`` as the running deployment's journal read it on the state node. When the
    state dir is on another node (``held_elsewhere`` says which), nothing here can stand in for
    it: not ready, never a fresh deployment."""
    now = time.time() if now is None else now
    checks: list[Check] = []
    name = cfg.deployment.name
    state_dir = Path(state_dir or cfg.deployment.resolved_state_dir())
    if venue != cfg.venue.kind:
        checks.append(
            Check("venue", FAIL, f"config {name!r} trades on {cfg.venue.kind!r}, not {venue!r}")
        )
        return PreflightResult(name, venue, strict, checks)
    checks.append(_running_check(running))
    if held_elsewhere is not None:
        state = {"checks": [{"name": "state dir", "status": FAIL, "detail": held_elsewhere}]}
    elif state is None:
        state = preflight_state(state_dir)
    checks.extend(Check(**c) for c in state["checks"])
    facts: Facts | None = state.get("facts")
    live = _venue_check(cfg, running, checks, state_dir, elsewhere=held_elsewhere is not None)
    asked = next((c for c in checks if c.name == "venue"), None)
    account = asked.data.get("account") if asked is not None else None
    checks.append(_balance_check(cfg, facts, account, running=running is not None))
    checks.append(_kill_switch_check(facts))
    checks.append(_reconciliation_check(cfg, facts, live, now))
    checks.append(_last_reconciliation_check(facts))
    checks.append(_session_check(cfg, now, require_market_open))
    checks.append(_telemetry_check(cfg, running))
    disabled = cfg.risk.disabled_limits()
    checks.append(
        Check(
            "risk limits",
            OK,
            f"{len(disabled)} disabled: {', '.join(disabled)}" if disabled else "all set",
            {"disabled": disabled},
        )
    )
    return PreflightResult(name, venue, strict, checks)


def preflight_state_on_cluster(cfg: TradeplaneConfig) -> dict[str, Any]:
    """``run_preflight``'s view of the state dir when the cluster knows better than this disk:
    read by the running journal on its node, or named on another node for a stopped one."""
    import ray

    from tradeplane.cli.cluster_reads import locate_stopped, running_journal

    if not ray.is_initialized():
        return {}
    name = cfg.deployment.name
    try:
        journal = running_journal(name)
        if journal is not None:
            return {"state": journal.preflight(), "state_dir": journal.state_dir}
    except OperationalError as exc:
        failed = {"name": "journal", "status": "fail", "detail": str(exc)}
        return {"state": {"checks": [failed]}}
    where = locate_stopped(name, cfg.deployment.resolved_state_dir())
    if isinstance(where, str):
        return {"held_elsewhere": where}
    return {} if where is None else {"state_dir": where}


def _running_check(running: Any | None) -> Check:
    if running is None:
        return Check("deployment", OK, "not running")
    try:
        status = call_running_within(10, running, SupervisorApi.status)
    except Exception as exc:
        return Check("deployment", FAIL, f"running but not answering: {type(exc).__name__}")
    detail = f"running: phase {status.get('phase')}, health {status.get('health')}"
    healthy = status.get("health") in ("ok", "ready", "waiting_for_data", "idle_market_closed")
    return Check("deployment", OK if healthy else FAIL, detail + f" ({status.get('reason')})")


def _venue_check(
    cfg: TradeplaneConfig,
    running: Any | None,
    checks: list[Check],
    state_dir: Path,
    *,
    elsewhere: bool = False,
) -> Holdings | None:
    from tradeplane.venues.sim.snapshot import (
        holdings_from_venue,
        read_sim_holdings,
        sim_venue_db,
    )

    if running is not None:
        try:
            raw = call_running_within(15, running, SupervisorApi.venue_holdings)
            live = holdings_from_venue(raw["positions"], raw["open_orders"])
        except Exception as exc:
            checks.append(Check("venue", FAIL, f"running deployment's venue: {exc}"))
            return None
        checks.append(Check("venue", OK, _holdings_text("connected (via the broker)", live)))
        return live
    if cfg.venue.kind == "ib":
        return _ib_check(cfg, checks)
    if elsewhere:
        checks.append(Check("venue", FAIL, "sim venue: its book is in the state dir (elsewhere)"))
        return None
    path = sim_venue_db(state_dir, shadow=cfg.deployment.mode is Mode.SHADOW)
    if not path.exists():
        checks.append(Check("venue", OK, f"sim venue: no state yet at {path} (starts flat)"))
        return Holdings(positions={}, open_orders=())
    try:
        live = read_sim_holdings(path)
    except OperationalError as exc:
        checks.append(Check("venue", FAIL, str(exc)))
        return None
    checks.append(Check("venue", OK, _holdings_text(f"sim venue at {path}", live)))
    return live


def _ib_check(cfg: TradeplaneConfig, checks: list[Check]) -> Holdings | None:
    """Ask TWS directly (the deployment is not running) on a client id of its own (the broker
    uses ``client_id``, the feed ``client_id + 1``): identity, positions, open orders."""
    import asyncio

    from tradeplane.venues.ib.venue import IbVenueClient
    from tradeplane.venues.sim.snapshot import holdings_from_venue

    ib = cfg.venue.ib
    probe = ib.model_copy(update={"client_id": ib.client_id + 2})

    async def ask() -> tuple[str, dict[str, Any], list[Any], dict[str, Any]]:
        client = IbVenueClient(probe)
        try:
            account = await client.start()
            positions, open_orders = await client.positions(), await client.open_orders()
            return account, positions, open_orders, await client.account_values()
        finally:
            client.close()

    try:
        account, positions, open_orders, values = asyncio.run(ask())
    except (OperationalError, TransientError) as exc:  # id in use, identity, TWS not there
        checks.append(Check("venue", FAIL, str(exc)))
        return None
    live = holdings_from_venue(positions, open_orders)
    where = f"IB {ib.host}:{ib.port} account {account} ({'live' if ib.live else 'paper'})"
    checks.append(Check("venue", OK, _holdings_text(where, live), {"account": values}))
    return live


def _holdings_text(prefix: str, live: Holdings) -> str:
    return f"{prefix}: {len(live.positions)} position(s), {len(live.open_orders)} open order(s)"


def _balance_check(
    cfg: TradeplaneConfig,
    facts: Facts | None,
    account: dict[str, Any] | None,
    *,
    running: bool = False,
) -> Check:
    """The account's value and cash where the venue keeps an account (IB), beside the starting
    equity risk measures from and the persisted risk figures."""
    base = cfg.risk.resolved_starting_equity([s.capital for s in cfg.strategies])
    state = facts["risk_state"] if facts is not None else None
    data: dict[str, Any] = {"starting_equity": base}
    status = OK
    if cfg.venue.kind != "ib":
        detail = f"starting equity {base:,.2f} (sim venue keeps no cash account)"
    elif account and "net_liquidation" in account:
        currency = account.get("currency", "")
        cash = account.get("total_cash")
        detail = f"account net liquidation {account['net_liquidation']:,.2f} {currency}".strip()
        detail += f", cash {cash:,.2f} {currency}".rstrip() if cash is not None else ", cash ?"
        detail += f"; starting equity {base:,.2f}"
        data["account"] = account
    elif running:  # the broker holds the link; its holdings were asked, not the account
        detail = (
            f"account value and cash: asked of TWS when not running; starting equity {base:,.2f}"
        )
    else:
        status = WARN
        detail = f"account value and cash not reported by the venue; starting equity {base:,.2f}"
    if state:
        data["risk_state"] = {
            k: state.get(k) for k in ("risk_day", "day_start_equity", "high_water_mark")
        }
        hwm = state.get("high_water_mark")
        if hwm is not None:
            detail += f"; high-water mark {float(hwm):,.2f}, risk day {state.get('risk_day')}"
    return Check("balances", status, detail, data)


def _kill_switch_check(facts: Facts | None) -> Check:
    kill = facts["kill_switch"] if facts is not None else None
    if kill and kill.get("active"):
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(kill.get("ts") or 0)))
        return Check(
            "kill switch",
            FAIL,
            f"ACTIVE since {since} UTC ({kill.get('source')}: {kill.get('reason')}); clear with "
            f"`tradeplane kill-switch off NAME --reason ...`",
            dict(kill),
        )
    return Check("kill switch", OK, "off")


def _reconciliation_check(
    cfg: TradeplaneConfig, facts: Facts | None, live: Holdings | None, now: float
) -> Check:
    if live is None:
        return Check("reconciliation", FAIL, "venue holdings unavailable: cannot compare")
    if facts is None:
        expected = Holdings(positions={}, open_orders=())
    else:
        expected = expected_from_journal(facts["positions"], facts["open_orders"])
    report = reconcile(expected, live, checked_at=now, venue=cfg.venue.kind)
    if report.clean:
        return Check("reconciliation", OK, "preview clean", report.to_dict())
    blocks = cfg.supervisor.fail_on_reconciliation_mismatch
    action = "start would be blocked" if blocks else "start would adopt the venue's holdings"
    return Check(
        "reconciliation",
        FAIL if blocks else WARN,
        f"preview: {report.summary()} ({action})",
        report.to_dict(),
    )


def _last_reconciliation_check(facts: Facts | None) -> Check:
    last = facts["last_reconciliation"] if facts is not None else None
    if not last:
        return Check("last reconciliation", OK, "none yet")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(float(last.get("checked_at") or 0)))
    verdict = "clean" if last.get("clean") else f"mismatch, {last.get('action')}"
    return Check("last reconciliation", OK, f"{when} UTC: {verdict}", dict(last))


def _session_check(cfg: TradeplaneConfig, now: float, require_open: bool) -> Check:
    calendar = make_calendar(cfg.session.calendar)
    info = calendar.describe(now)
    is_open = bool(info.get("is_open"))
    detail = (
        f"{cfg.session.calendar}: {'open' if is_open else 'closed'}; risk day "
        f"{info.get('risk_day')}, next boundary {info.get('next_boundary')}"
    )
    if not is_open and info.get("next_open"):
        detail += f", next open {info.get('next_open')}"
    status = FAIL if (require_open and not is_open) else OK
    return Check("session", status, detail, info)


def _telemetry_check(cfg: TradeplaneConfig, running: Any | None) -> Check:
    """Telemetry never blocks trading, so problems here are warnings: a collector that does not
    answer (spans would queue, then be dropped) or a metrics port another process holds."""
    tel = cfg.telemetry
    problems: list[str] = []
    parts: list[str] = []
    if tel.traces_exporter in ("otlp-grpc", "otlp-http"):
        url = urlsplit(tel.resolved_endpoint())
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            with socket.create_connection((url.hostname or "127.0.0.1", port), timeout=1.0):
                parts.append(f"traces to {tel.resolved_endpoint()} (reachable)")
        except OSError as exc:
            problems.append(
                f"collector {tel.resolved_endpoint()} unreachable ({exc.strerror or exc})"
            )
    else:
        parts.append(f"traces {tel.traces_exporter} (context journaled; `tradeplane trace` works)")
    if tel.metrics_port is None:
        parts.append("metrics endpoint off")
    elif running is None and tel.metrics_port != 0:
        with socket.socket() as sock:
            try:
                sock.bind((tel.metrics_host, tel.metrics_port))
                parts.append(f"metrics port {tel.metrics_host}:{tel.metrics_port} free")
            except OSError as exc:
                problems.append(
                    f"metrics port {tel.metrics_host}:{tel.metrics_port} taken "
                    f"({exc.strerror or exc}): the deployment would serve on another port "
                    f"(shown by status)"
                )
    elif running is None:
        parts.append("metrics on a free port, picked at start (shown by status)")
    endpoint = None
    if running is not None and tel.metrics_port is not None:
        try:
            live = call_running_within(10, running, SupervisorApi.status).get("telemetry") or {}
        except Exception as exc:  # the deployment check reports a supervisor not answering
            live = {"metrics_error": f"not answering: {type(exc).__name__}"}
        endpoint = live.get("metrics_endpoint")
        if endpoint:
            note = f" ({live['metrics_note']})" if live.get("metrics_note") else ""
            parts.append(f"metrics served at {endpoint}{note}")
        else:
            problems.append(f"metrics endpoint down: {live.get('metrics_error') or 'unknown'}")
    return Check(
        "telemetry",
        WARN if problems else OK,
        "; ".join(problems + parts),
        {
            "traces_exporter": tel.traces_exporter,
            "metrics_port": tel.metrics_port,
            "metrics_endpoint": endpoint,
        },
    )
