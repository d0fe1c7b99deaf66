"""Promotion gates over the two configs: the modes, the strategy code, and "a size change, not
a system change" (which config paths may differ between the paper and the live config). Pure:
configs come in as ``model_dump(mode="json")`` dicts and code as hashes."""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tradeplane.core.promotion import GateResult

ALWAYS_ALLOWED: tuple[str, ...] = (
    # the deployment's identity: its name, mode and where its record lives
    "deployment.name",
    "deployment.mode",
    "deployment.state_dir",
    "deployment.state_node",
    "deployment.feed_node",
    # size
    "deployment.starting_cash",
    "strategies.*.capital",
    # limits
    "risk.*",
    # the venue connection and its credentials (a live account, its port and client id)
    "venue.ib.host",
    "venue.ib.port",
    "venue.ib.client_id",
    "venue.ib.account",
    "venue.ib.live",
    "venue.credentials.*",
    # where each deployment's own telemetry is served, so both can run side by side
    "telemetry.metrics_port",
    "telemetry.service_name",
    # the file may move; its contents are compared by hash (the ``strategy code`` gate)
    "strategies.*.path",
    # the live config's own promotion settings
    "promotion.*",
)
"""Config paths that may differ between the paper and the live config, whatever
``[promotion]`` says. Size params and ``allowed_differences`` add to these."""


def check_modes(paper_mode: str, live_mode: str) -> GateResult:
    data = {"paper": paper_mode, "live": live_mode}
    problems = []
    if paper_mode != "paper":
        problems.append(f"the paper config's mode is {paper_mode!r}, not 'paper'")
    if live_mode != "live":
        problems.append(f"the config to promote has mode {live_mode!r}, not 'live'")
    if problems:
        return GateResult("modes", False, "; ".join(problems), data)
    return GateResult("modes", True, "paper -> live", data)


def code_hash(source: str) -> str:
    """A strategy's code hash: sha256 of its source text as the deployer reads and ships it
    (UTF-8, universal newlines), hex."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def check_strategy_code(
    paper_hashes: Mapping[str, str | None],
    live_hashes: Mapping[str, str | None],
    ran: Mapping[str, Any] | None,
) -> GateResult:
    """The same code per strategy in both configs (a hash of None: a file that could not be
    read) and in the last paper session (``ran``: the hashes its ``deployment_started``
    recorded). Without those the gate fails: the files alone say nothing of what paper ran."""
    name = "strategy code"
    rows = []
    bad = []
    for strategy in sorted(set(paper_hashes) | set(live_hashes)):
        paper, live = paper_hashes.get(strategy), live_hashes.get(strategy)
        traded = None if ran is None else ran.get(strategy)
        same = paper is not None and paper == live and traded == live
        rows.append(
            {"strategy": strategy, "paper": paper, "live": live, "ran": traded, "same": same}
        )
        if not same:
            bad.append(strategy)
    data = {"strategies": rows}
    if ran is None:
        return GateResult(
            name,
            False,
            "the last paper session recorded no strategy code hashes (started by an earlier "
            "tradeplane, or no session): run a paper session of this code",
            data,
        )
    if bad:
        return GateResult(
            name,
            False,
            f"not the same in both configs and the last paper session for {', '.join(bad)}",
            data,
        )
    count = f"{len(rows)} strateg{'y' if len(rows) == 1 else 'ies'}"
    return GateResult(
        name, True, f"same sha256 in both configs and the last paper session for {count}", data
    )


def allowed_patterns(size_params: Iterable[str], extra: Iterable[str] = ()) -> tuple[str, ...]:
    return (
        *ALWAYS_ALLOWED,
        *(f"strategies.*.params.{p}" for p in size_params),
        *extra,
    )


def flatten_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A config (``model_dump(mode="json")``) as {dotted path: value}; strategies are keyed by
    name (``strategies.<name>.<field>``) so a reordering or a new strategy is seen as such. A
    list of plain values is one value."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if key == "strategies":
            for s in value:
                _flatten(flat, f"strategies.{s.get('name')}", s)
        else:
            _flatten(flat, key, value)
    return flat


def _flatten(flat: dict[str, Any], prefix: str, value: Any) -> None:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _flatten(flat, f"{prefix}.{k}", v)
    else:
        flat[prefix] = value


_MISSING = "<unset>"


def check_config_diff(
    paper: Mapping[str, Any], live: Mapping[str, Any], allowed: Sequence[str]
) -> GateResult:
    """``paper`` and ``live``: the configs as ``model_dump(mode="json")``. Every difference is
    listed; those no pattern of ``allowed`` matches fail the gate."""
    name = "config"
    order_paper = [s.get("name") for s in paper.get("strategies", ())]
    order_live = [s.get("name") for s in live.get("strategies", ())]
    flat_paper, flat_live = flatten_config(paper), flatten_config(live)
    allowed_diffs: list[dict[str, Any]] = []
    system: list[dict[str, Any]] = []
    for path in sorted(set(flat_paper) | set(flat_live)):
        a, b = flat_paper.get(path, _MISSING), flat_live.get(path, _MISSING)
        if a == b:
            continue
        row = {"path": path, "paper": a, "live": b}
        ok = any(fnmatch.fnmatchcase(path, p) for p in allowed)
        (allowed_diffs if ok else system).append(row)
    if order_paper != order_live:
        system.insert(0, {"path": "strategies (names, in order)", "paper": order_paper,
                          "live": order_live})  # fmt: skip
    data = {"allowed": allowed_diffs, "not_allowed": system, "allowed_patterns": list(allowed)}
    if system:
        shown = ", ".join(
            f"{d['path']} ({_short(d['paper'])} -> {_short(d['live'])})" for d in system[:5]
        )
        more = f" and {len(system) - 5} more" if len(system) > 5 else ""
        return GateResult(name, False, f"a system change, not a size change: {shown}{more}", data)
    sized = ", ".join(d["path"] for d in allowed_diffs) or "nothing"
    return GateResult(name, True, f"differs only in size, limits and venue: {sized}", data)


def _short(value: Any, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."
