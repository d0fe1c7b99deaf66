"""Multi-node benchmark: a worker node lost -> every strategy it hosted healthy elsewhere, and
bars/s with the strategies spread over three nodes vs all on one. JSON lines on stdout.

Run with ``make bench`` (or ``python bench/nodes.py --quick`` for a short smoke run). It builds
its own cluster of several Ray nodes on 127.0.0.1 (``ray.cluster_utils.Cluster``, as
tests/multinode does: a head that carries no tradeplane actor, a state node with resource
``tp_state`` and label ``tp-role=state``, workers with resource ``tp_strategy``), so it needs no
running Ray and must not share the machine with another Ray run.

* ``nodes.node_loss`` (one line per health-check setting: the runbook's recommended values, then
  Ray's defaults on a fresh cluster): a worker hosting at least one strategy is removed with
  ``remove_node(allow_graceful=False)``, a loss, not a drain; the time runs until the status
  shows each of its strategy roles placed on another live node, ``running``, and health ``ok``.
  Where the time goes, per loss: until Ray's node table shows the node dead (``dead_s``), until
  ``node_lost`` was journaled (``journaled_s``, the supervisor's clock), and from dead to healthy
  (``dead_to_healthy_s``; the supervisor restarts one role at a time, so also per role;
  negative when the supervisor restarted them before Ray declared the node dead, having seen
  their calls fail: on loopback the node's workers die with its raylet). ``node_lost_missing``
  counts losses whose ``node_lost`` the status did not show within 5 s of the node's death. After
  each loss a replacement worker joins, and the next loss waits for it and for the deployment to
  be ``ok`` with fills flowing; the replacement gets no strategy until one restarts (nothing
  rebalances), so later losses tend to take more strategies with them (``roles_per_loss``;
  the victim is a seeded random pick among the workers hosting any). The floor, on the same cluster
  and deployment: the same strategies' restart after a plain SIGKILL of their actor
  (``tradeplane.supervisor.chaos.kill_actor``), i.e. recovery without node-loss detection.
* ``nodes.bars_per_s`` (one line per placement, then ``nodes.bars_per_s_compared``): the unpaced
  feed's sustained bars/s into the same number of idle strategies, all pinned to one worker by
  its label vs spread over three workers by resource (bench/pipeline.py's measurement). Every
  node runs on this machine, so this is the cost of crossing raylets, not more CPUs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import ray  # noqa: E402

from bench.pipeline import HERE, bench_config, feed_handle, pct, sustained_rate  # noqa: E402
from bench.recovery import (  # noqa: E402
    child,
    measure_one,
    status_or_none,
    supervisor_settings,
    wait_ready,
)
from tests.multinode.conftest import HEALTH_CHECK, NODE, Nodes  # noqa: E402
from tradeplane.cluster.nodes import cluster_nodes  # noqa: E402
from tradeplane.config.loading import parse_config  # noqa: E402
from tradeplane.config.models import TradeplaneConfig  # noqa: E402
from tradeplane.protocol.roles import NAMESPACE, is_strategy_role  # noqa: E402
from tradeplane.supervisor import deployment  # noqa: E402

TARGETS = {"median_s": 5.0, "p95_s": 10.0}  # issue 14, with the recommended settings
STATE_NODE = "tp-role=state"
POLL_S = 0.05
# How long after Ray declared the node dead ``node_lost`` may take to show in the status (the
# supervisor reads the node table about once a second); not there by then: counted as missing.
JOURNAL_GRACE_S = 5.0
SAMPLE_KEYS = ("total_s", "remove_s", "dead_s", "journaled_s", "dead_to_healthy_s", "roles")

# Ray prints "(raylet) ..." lines to the driver's stdout and the nodes it starts inherit its
# descriptors: results go to a private copy of stdout, descriptor 1 is pointed at stderr.
RESULTS: TextIO = sys.stdout


def emit(record: dict[str, Any]) -> None:
    record.setdefault("ts", time.time())
    RESULTS.write(json.dumps(record) + "\n")
    RESULTS.flush()


def r2(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def stats(found: list[float | None]) -> dict[str, float | None]:
    values = [v for v in found if v is not None]
    return {
        "median": r2(pct(values, 0.5)),
        "p95": r2(pct(values, 0.95)),
        "max": r2(max(values) if values else None),
    }


@contextlib.contextmanager
def cluster(system_config: dict[str, Any] | None, workers: int) -> Iterator[Nodes]:
    """A head (no tradeplane actor), the state node and ``workers`` strategy workers."""
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    # Every node on loopback (see tests/multinode/conftest.py).
    ray_constants.ENABLE_RAY_CLUSTER = False
    head = {**NODE, "include_dashboard": False}
    if system_config:
        head["_system_config"] = dict(system_config)  # Ray adds its own entries to it
    found = Nodes(Cluster(initialize_head=True, head_node_args=head))
    try:
        found.ensure(workers=workers)
        # Not ``deployment.connect``: see tests/multinode/conftest.py (token auth).
        ray.init(
            address=found.cluster.address,
            _node_ip_address="127.0.0.1",
            namespace=NAMESPACE,
            log_to_driver=False,
        )
        yield found
    finally:
        ray.shutdown()
        found.cluster.shutdown()


# -- node loss ---------------------------------------------------------------------------------


def loss_config(name: str, state_dir: Path, *, strategies: int, window_s: float) -> Any:
    """Strategies trading on most bars (fills show the deployment really works), each asking
    for ``tp_strategy`` (workers only), spread; a watchdog budget no series of losses spends."""
    return parse_config(
        {
            "deployment": {
                "name": name,
                "mode": "paper",
                "state_dir": str(state_dir),
                "state_node": STATE_NODE,
            },
            "venue": {
                "kind": "sim",
                "sim": {"symbols": ["AAA", "BBB"], "speed": 600.0, "history_bars": 0, "seed": 3},
            },
            "supervisor": supervisor_settings(window_s),
            "strategies": [
                {
                    "name": f"s{i}",
                    "path": str(HERE / "strategies" / "pinger.py"),
                    "class_name": "Pinger",
                    "params": {"every": 10},
                    "resources": {"tp_strategy": 1},
                }
                for i in range(strategies)
            ],
        },
        source="bench",
    )


def alive_ids() -> set[str]:
    return {n.node_id for n in cluster_nodes() if n.alive}


def strategies_by_node(status: dict[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for role, where in (status.get("placement") or {}).items():
        if is_strategy_role(role):
            out.setdefault(where["node_id"], []).append(role)
    return out


def healthy_elsewhere(status: dict[str, Any], roles: list[str], lost: str, live: set[str]) -> bool:
    if status.get("health") != "ok":
        return False
    placement = status.get("placement") or {}
    for role in roles:
        node = (placement.get(role) or {}).get("node_id")
        if node is None or node == lost or node not in live:
            return False
        if child(status, role).get("state") != "running":
            return False
    return True


def lose_one(nodes: Nodes, name: str, rng: random.Random, give_up_s: float) -> dict[str, Any]:
    """Lose a worker hosting strategies; when (after the loss) Ray showed it dead, the supervisor
    journaled it, and its strategies were healthy elsewhere."""
    status = status_or_none(name, 10.0) or {}
    hosted = strategies_by_node(status)
    busy = [w for w in nodes.workers if w.node_id in hosted]
    if not busy:
        return {"error": f"no worker hosts a strategy (placement {hosted})"}
    victim = rng.choice(busy)
    lost, roles = victim.node_id, sorted(hosted[victim.node_id])
    t0 = time.time()
    nodes.lose(victim)
    out: dict[str, Any] = {"node": lost[:12], "roles": roles, "remove_s": time.time() - t0}
    dead = healthy = None
    while time.time() - t0 < give_up_s:
        now = time.time()
        live = alive_ids()
        if dead is None and lost not in live:
            dead = now
        status = status_or_none(name, 1.0) or {}
        if status.get("phase") == "failed":
            out["error"] = f"deployment failed: {status.get('reason')}"
            break
        if "journaled_s" not in out:
            for entry in status.get("lost_nodes") or []:
                if entry.get("node_id") == lost:
                    out["journaled_s"] = float(entry["ts"]) - t0
        if healthy is None and healthy_elsewhere(status, roles, lost, live):
            healthy = now
        settled = "journaled_s" in out or (dead is not None and now - dead > JOURNAL_GRACE_S)
        if healthy is not None and dead is not None and settled:
            break
        time.sleep(POLL_S)
    else:
        # Healthy first is possible: the supervisor restarts a strategy whose calls fail, not
        # only once Ray declares the node dead (the dead time is still waited for, up to here).
        if healthy is None:
            out["error"] = f"not healthy elsewhere within {give_up_s:.0f}s"
    out["dead_s"] = None if dead is None else dead - t0
    out["total_s"] = None if healthy is None else healthy - t0
    out["dead_to_healthy_s"] = None if dead is None or healthy is None else healthy - dead
    return out


def replace_worker(nodes: Nodes, name: str, role: str, window_s: float, timeout_s: float) -> str:
    """A new worker alive, then the deployment ok with fills flowing, and the watchdog's window
    passed (each loss a first failure, not backoff compounding); '' or why not."""
    nodes.add_worker()
    return wait_ready(name, role, fills=2, min_gap_s=window_s * 1.5, timeout_s=timeout_s)


def floor_kills(name: str, kills: int, window_s: float, give_up_s: float) -> list[float]:
    """SIGKILL one strategy's actor at a time: recovery without node-loss detection."""
    status = status_or_none(name, 10.0) or {}
    roles = sorted(r for r in (status.get("children") or {}) if is_strategy_role(r))
    times: list[float] = []
    for k in range(kills):
        role = roles[k % len(roles)]
        if wait_ready(name, role, fills=2, min_gap_s=window_s * 1.5, timeout_s=give_up_s):
            continue
        took, _ = measure_one(name, role, "sigkill", give_up_s)
        if took is not None:
            times.append(took)
    return times


def bench_node_loss(
    tmp: Path,
    nodes: Nodes,
    *,
    label: str,
    settings: dict[str, Any],
    losses: int,
    args: argparse.Namespace,
) -> None:
    name = f"bench-nodes-loss-{label}"
    cfg = loss_config(name, tmp / name, strategies=args.strategies, window_s=args.window_s)
    samples: list[dict[str, Any]] = []
    errors: list[str] = []
    deployment.deploy(cfg)
    try:
        first = f"strategy/{cfg.strategies[0].name}"
        why = wait_ready(name, first, fills=3, min_gap_s=0.0, timeout_s=args.give_up_s)
        if why:
            errors.append(f"before the first loss: {why}")
        ready = not why
        floor = floor_kills(name, args.floor_kills, args.window_s, args.give_up_s) if ready else []
        rng = random.Random(args.seed)
        for _ in range(losses if ready else 0):
            sample = lose_one(nodes, name, rng, args.give_up_s)
            samples.append(sample)
            if "error" in sample:
                errors.append(sample["error"])
                if sample["error"].startswith(("deployment failed", "no worker")):
                    break
            role = sample["roles"][0] if sample.get("roles") else first
            t0 = time.monotonic()
            why = replace_worker(nodes, name, role, args.window_s, args.give_up_s)
            sample["replaced_s"] = time.monotonic() - t0
            if why:
                errors.append(f"after a loss: {why}")
                break
        final = status_or_none(name, 10.0) or {}
    finally:
        try:
            deployment.stop(name)
        except Exception as exc:  # a failed deployment may not stop cleanly: report, go on
            errors.append(f"stop: {type(exc).__name__}: {exc}"[:300])
    done = [s for s in samples if s.get("total_s") is not None]
    total = [s["total_s"] for s in done]
    median, p95 = pct(total, 0.5), pct(total, 0.95)
    recommended = label == "recommended"
    emit(
        {
            "bench": "nodes.node_loss",
            "health_check": label,
            "settings": settings or "ray defaults",
            "strategies": args.strategies,
            "workers": args.workers,
            "losses": len(samples),
            "recovered": len(done),
            "failures": len(errors),
            "errors": errors[:5],
            "healthy_elsewhere_s": stats(total),
            "dead_s": stats([s["dead_s"] for s in done]),
            "journaled_s": stats([s["journaled_s"] for s in done if "journaled_s" in s]),
            "node_lost_missing": sum(1 for s in done if "journaled_s" not in s),
            "dead_to_healthy_s": stats([s["dead_to_healthy_s"] for s in done]),
            # The supervisor restarts one role at a time: the part after "dead" grows with the
            # number of strategies the node hosted (they are not rebalanced onto replacements).
            "dead_to_healthy_per_role_s": stats(
                [
                    s["dead_to_healthy_s"] / len(s["roles"])
                    for s in done
                    if s["dead_to_healthy_s"] is not None
                ]
            ),
            "roles_per_loss": sorted(len(s.get("roles") or []) for s in samples),
            "floor_actor_sigkill_s": {"n": len(floor), **stats(floor)},
            "target_median_s": TARGETS["median_s"] if recommended else None,
            "target_p95_s": TARGETS["p95_s"] if recommended else None,
            "met": None
            if not recommended
            else bool(
                done
                and not errors
                and median is not None
                and median <= TARGETS["median_s"]
                and p95 is not None
                and p95 <= TARGETS["p95_s"]
            ),
            "final_health": final.get("health"),
            "samples": [
                {k: r2(v) if isinstance(v, float) else v for k, v in s.items() if k in SAMPLE_KEYS}
                for s in samples
            ],
        }
    )


# -- bars/s, spread vs one ---------------------------------------------------------------------


def throughput_config(
    tmp: Path, name: str, placement: dict[str, Any], args: argparse.Namespace
) -> TradeplaneConfig:
    return bench_config(
        name,
        tmp / name,
        symbols=args.symbols,
        speed=1e9,
        strategy="Idle",
        copies=args.strategies,
        placement=placement,
        state_node=STATE_NODE,
    )


def bars_per_s(cfg: TradeplaneConfig, args: argparse.Namespace) -> dict[str, Any]:
    name = cfg.deployment.name
    deployment.deploy(cfg)
    try:
        status = status_or_none(name, 10.0) or {}
        feed = feed_handle(name)
        while ray.get(feed.heartbeat.remote())["bars"] < args.warm_up_bars:
            time.sleep(0.5)
        rate = sustained_rate(feed, total_bars=args.bars)
        placed = strategies_by_node(status_or_none(name, 10.0) or status)
        return {**rate, "strategies_per_node": sorted(len(r) for r in placed.values())}
    finally:
        deployment.stop(name)


def bench_bars_per_s(tmp: Path, nodes: Nodes, args: argparse.Namespace) -> None:
    labels = {n.node_id: n.labels for n in cluster_nodes()}
    one = {"labels": {"zone": labels[nodes.workers[0].node_id]["zone"]}}
    spread = {"resources": {"tp_strategy": 1}}
    rates: dict[str, list[float]] = {"one": [], "spread": []}
    for rnd in range(args.rounds):
        # Alternated, so a neighbour's load on the shared machine hits both alike.
        for label, placement in (("one", one), ("spread", spread)):
            cfg = throughput_config(tmp, f"bench-nodes-{label}-{rnd}", placement, args)
            found = bars_per_s(cfg, args)
            rates[label].append(found["sustained_bars_per_s"])
            emit(
                {
                    "bench": "nodes.bars_per_s",
                    "placement": label,
                    "round": rnd,
                    "strategies": args.strategies,
                    "symbols": args.symbols,
                    **found,
                }
            )
    one_rate, spread_rate = pct(rates["one"], 0.5), pct(rates["spread"], 0.5)
    emit(
        {
            "bench": "nodes.bars_per_s_compared",
            "strategies": args.strategies,
            "rounds": args.rounds,
            "one_node_bars_per_s": r2(one_rate),
            "three_nodes_bars_per_s": r2(spread_rate),
            "spread_over_one": r2(spread_rate / one_rate) if one_rate and spread_rate else None,
            "floor": "one_node_bars_per_s (the same strategies on one worker, same run)",
        }
    )


def main() -> int:
    global RESULTS
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short run (smoke test, not a result)")
    ap.add_argument("--losses", type=int, default=10, help="losses, recommended settings (0: skip)")
    ap.add_argument(
        "--default-losses", type=int, default=3, help="losses with Ray's defaults (0: skip)"
    )
    ap.add_argument("--floor-kills", type=int, default=5, help="actor SIGKILLs for the floor")
    ap.add_argument("--strategies", type=int, default=6)
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--give-up-s", type=float, default=60.0)
    ap.add_argument("--window-s", type=float, default=1.0, help="recovery_window_s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--symbols", type=int, default=16)
    ap.add_argument("--warm-up-bars", type=int, default=5_000)
    ap.add_argument("--bars", type=int, default=30_000, help="bars measured per placement")
    ap.add_argument("--rounds", type=int, default=2, help="one/spread pairs")
    ap.add_argument("--skip-bars", action="store_true", help="node loss only")
    args = ap.parse_args()
    if args.quick:
        args.losses, args.default_losses, args.floor_kills = 2, 1, 2
        args.warm_up_bars, args.bars, args.rounds = 2_000, 5_000, 1
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    RESULTS = os.fdopen(os.dup(1), "w")
    sys.stdout.flush()
    os.dup2(2, 1)
    with tempfile.TemporaryDirectory(prefix="tradeplane-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if args.losses > 0 or not args.skip_bars:
            with cluster(HEALTH_CHECK, args.workers) as nodes:
                if args.losses > 0:
                    bench_node_loss(
                        tmp,
                        nodes,
                        label="recommended",
                        settings=HEALTH_CHECK,
                        losses=args.losses,
                        args=args,
                    )
                if not args.skip_bars:
                    bench_bars_per_s(tmp, nodes, args)
        if args.default_losses > 0:
            # Ray's defaults take ~15 s or more to declare a node dead: a longer wait per loss.
            args.give_up_s = max(args.give_up_s, 150.0)
            with cluster(None, args.workers) as nodes:
                bench_node_loss(
                    tmp,
                    nodes,
                    label="ray_defaults",
                    settings={},
                    losses=args.default_losses,
                    args=args,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
