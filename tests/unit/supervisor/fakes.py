"""A fake of the supervisor's adapter and clock: children are plain records, the journal a list,
time moves only when a test advances it. Nothing sleeps for real: a wait on the fake clock ends
when the test advances past its deadline (or its event is set)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tradeplane.cluster.placement import NodeInfo, Placement
from tradeplane.config.models import TradeplaneConfig
from tradeplane.core.errors import OperationalError
from tradeplane.core.run_record import RunRecord
from tradeplane.supervisor.adapter import ChildGone
from tradeplane.supervisor.supervisor import Supervisor

ROLES = ("journal", "venue", "broker", "risk", "reconciler", "strategy/a", "feed")
STATE_NODE = "a" * 56


async def settle(rounds: int = 200) -> None:
    """Let every ready task run (the fake answers at once, so a few hundred yields suffice)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def eventually(probe: Callable[[], Any], what: str = "", rounds: int = 20_000) -> Any:
    for _ in range(rounds):
        value = probe()
        if value:
            return value
        await asyncio.sleep(0)
    raise AssertionError(f"never true: {what}")


class FakeClock:
    """Wall and monotonic readings that move together with ``advance`` (time passing);
    ``step_wall`` jumps the wall clock alone, either way, as NTP or an operator can. Sleeps and
    waits run on the monotonic reading, as asyncio's do."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.t = now
        self.mono = 0.0
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self.t

    def monotonic(self) -> float:
        return self.mono

    def step_wall(self, seconds: float) -> None:
        self.t += seconds

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.mono + seconds, future))
        await future

    async def wait(self, event: asyncio.Event, timeout_s: float | None) -> bool:
        if event.is_set():
            return True
        waiter = asyncio.ensure_future(event.wait())
        if timeout_s is None:
            await waiter
            return True
        sleeper = asyncio.ensure_future(self.sleep(timeout_s))
        done, pending = await asyncio.wait({waiter, sleeper}, return_when="FIRST_COMPLETED")
        for task in pending:
            task.cancel()
        return waiter in done

    async def advance(self, seconds: float) -> None:
        await settle()  # whoever is about to wait starts waiting before time moves
        self.t += seconds
        self.mono += seconds
        for deadline, future in self._sleepers:
            if deadline <= self.mono and not future.done():
                future.set_result(None)
        self._sleepers = [(d, f) for d, f in self._sleepers if not f.done()]
        await settle()


@dataclass
class FakeChild:
    role: str
    alive: bool = True
    cause: str = ""
    died: asyncio.Event = field(default_factory=asyncio.Event)

    def die(self, cause: str) -> None:
        if self.alive:
            self.alive, self.cause = False, cause
            self.died.set()


@dataclass(frozen=True)
class FakeSpec:
    role: str
    placement: Placement = field(default_factory=Placement)


class FakeAdapter:
    """Records every call; ``fail(role, method, times, exc)`` makes calls fail, ``crash(role)``
    kills a child, ``journal_up = False`` makes the journal unreachable (durable appends raise,
    queued ones wait in ``pending`` until it is back)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.children: dict[str, FakeChild] = {}
        self.calls: list[tuple[str, str, tuple[Any, ...]]] = []
        self.sent: list[tuple[str, str, tuple[Any, ...]]] = []
        self.created: list[str] = []
        self.killed: list[str] = []
        self.records: list[dict[str, Any]] = []  # committed, with seq
        self.state: dict[tuple[str, str], Any] = {}
        self.pending: list[tuple[list[Any], list[Any]]] = []
        self.journal_up = True
        # Test control: appends dispatched but not yet answered (Ray may deliver them after a
        # later durable write); ``release_appends`` answers them.
        self.hold_appends = False
        self.held: list[tuple[list[Any], list[Any]]] = []
        self.failures: dict[tuple[str, str], list[Exception]] = {}
        self.create_failures: dict[str, int] = {}
        self.abandoned: set[str] = set()
        self.beats: dict[str, dict[str, Any]] = {}
        self.feed_bar_interval_s = 0.0
        self.feed_bar: tuple[float, float] | None = None  # the last bar's (monotonic, wall)
        self.feed_silent = False
        self.node_table: list[NodeInfo] = [NodeInfo(STATE_NODE, "10.0.0.1", alive=True)]
        self.created_on: dict[str, str | None] = {}
        self.lands_on: dict[str, str] = {}  # where Ray put a spread actor
        self.runs: list[RunRecord] = []  # every version of the run record written
        self.head_down = False
        self.epochs: dict[str, int] = {}
        self.inits: dict[str, dict[str, Any]] = {}
        self.fences: dict[str, int] = {}
        self.fenced_at_create: dict[str, int | None] = {}
        self.create_cause: dict[str, str] = {}
        self.run: RunRecord | None = None
        self.journal_ready: dict[str, Any] = {"genesis": "g" * 64, "last_seq": 0, "epoch": 1}
        self.standbys: dict[str, FakeChild] = {}  # by name, until promoted
        self.standby_nodes: dict[str, str | None] = {}
        self.promoted: list[tuple[str, str]] = []  # (role, standby name)
        self.promote_failures: int = 0
        self.killed_standbys: list[str] = []
        self.playing: dict[str, str] = {}  # role -> the standby name playing it

    # -- test controls -------------------------------------------------------------------------

    def fail(self, role: str, method: str, times: int, exc: Exception | None = None) -> None:
        self.failures[(role, method)] = [exc or ChildGone(f"{role}: refused")] * times

    def crash(self, role: str, cause: str = "killed by test") -> None:
        self.children[role].die(cause)

    def journal_back(self) -> None:
        self.journal_up = True
        pending, self.pending = self.pending, []
        for records, state in pending:
            self._commit(records, state)

    def release_appends(self) -> None:
        """Answer the held appends: the journal had them (they were dispatched while it was
        up), even if it has been closed or killed since."""
        held, self.held = self.held, []
        for records, state in held:
            self._commit(records, state)

    def kinds(self) -> list[str]:
        return [r["kind"] for r in self.records]

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [r["data"] for r in self.records if r["kind"] == kind]

    def method_calls(self, role: str, method: str) -> list[tuple[Any, ...]]:
        return [args for r, m, args in self.calls if (r, m) == (role, method)]

    # -- the adapter ---------------------------------------------------------------------------

    def create(self, spec: Any, node_id: str | None = None, *, epoch: int = 0, **init: Any) -> None:
        self.created.append(spec.role)
        self.created_on[spec.role] = node_id
        self.epochs[spec.role] = epoch
        self.inits[spec.role] = init
        self.fenced_at_create[spec.role] = self.fences.get(spec.role)
        child = FakeChild(spec.role)
        self.children[spec.role] = child
        if self.create_failures.get(spec.role, 0) > 0:
            self.create_failures[spec.role] -= 1
            child.die(self.create_cause.get(spec.role, "failed while starting: RuntimeError: boom"))

    def attach(self, role: str) -> bool:
        child = self.children.get(role)
        return child is not None and child.alive

    async def attach_all(self, roles: list[str]) -> dict[str, bool]:
        return {role: self.attach(role) for role in roles}

    def create_standby(self, name: str, node_id: str | None, warm: tuple[str, ...]) -> None:
        self.standbys[name] = FakeChild(name)
        self.standby_nodes[name] = node_id

    async def standby_info(self, name: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        standby = self.standbys.get(name)
        if standby is None or not standby.alive:
            raise ChildGone(f"standby {name}: dead")
        return {"name": name, "pid": 1, "rss_bytes": 1000, "cpu_s": 0.0, "refused_calls": 0}

    async def wait_standby_death(self, name: str) -> str:
        standby = self.standbys.get(name)
        if standby is None:
            return "no handle"
        await standby.died.wait()
        return standby.cause

    async def promote(self, spec: Any, name: str, *, epoch: int = 0, **init: Any) -> None:
        await asyncio.sleep(0)
        standby = self.standbys.pop(name)
        if not standby.alive:
            raise ChildGone(f"standby {name}: dead")
        if self.promote_failures > 0:
            self.promote_failures -= 1
            raise RuntimeError("promotion failed")
        # A new incarnation of the role, like ``create``, with the standby's identity.
        self.create(spec, self.standby_nodes.get(name), epoch=epoch, **init)
        self.promoted.append((spec.role, name))
        self.playing[spec.role] = name

    async def kill_standby(self, name: str) -> None:
        await asyncio.sleep(0)
        self.killed_standbys.append(name)
        standby = self.standbys.pop(name, None)
        if standby is not None:
            standby.die("killed")

    def forget_standby(self, name: str) -> None:
        self.standbys.pop(name, None)

    def stray_standbys(self, roles: list[str]) -> list[str]:
        return [n for n in self.standbys if n not in self.playing.values()]

    async def call(
        self, timeout_s: float, role: str, method_fn: Callable[..., Any], *args: Any
    ) -> Any:
        method = method_fn.__name__  # recorded by name: what the real adapter sends
        self.calls.append((role, method, args))
        await asyncio.sleep(0)
        child = self.children.get(role)
        if child is None or not child.alive:
            raise ChildGone(f"{role}: dead")
        queued = self.failures.get((role, method))
        if queued:
            raise queued.pop()
        return self._answer(role, method, args)

    def read_run(self) -> RunRecord | None:
        return self.run

    def update_run(self, run_id: str, **changes: Any) -> None:
        if self.run is None or self.run.run_id != run_id:
            self.run = RunRecord("t", run_id, "", "", "", "")
        self.run = self.run.with_(**changes)
        self.runs.append(self.run)

    def _answer(self, role: str, method: str, args: tuple[Any, ...]) -> Any:
        if method == "fence":
            self.fences[args[0]] = max(self.fences.get(args[0], 0), args[1])
            return self.fences[args[0]]
        if (role, method) == ("journal", "ready"):
            return dict(self.journal_ready)
        if method == "heartbeat":
            beat = {"feed": self._feed_beat()}.get(
                role, {"connected": True} if role == "broker" else {}
            )
            return beat | self.beats.get(role, {})
        if (role, method) == ("reconciler", "run"):
            report = {"clean": True, "checked_at": self.clock.now()}
            return {"action": "adopt", "summary": "clean", "lines": [], "report": report} | {
                "adopt_positions": {},
                "external_orders": [],
            }
        if method == "query":
            return self._query(args)
        if method == "cancel_all":
            return {"cancel_requested": 0}
        if method == "node_id":
            return self.created_on.get(role) or self.lands_on.get(role) or STATE_NODE
        return {}

    def silence_feed(self) -> None:
        """The fake feed's bars stop: the last one stays the one it last received."""
        self._feed_beat()
        self.feed_silent = True

    def _feed_beat(self) -> dict[str, Any]:
        """A feed on this host: a bar arrives every ``feed_bar_interval_s`` (seen when it is
        asked; 0: one each time) until ``silence_feed``. It records the wall time a bar came
        (a later wall step does not change it) and measures ages on the monotonic clock, as
        the real one does."""
        mono = self.clock.monotonic()
        due = self.feed_bar is None or mono - self.feed_bar[0] >= self.feed_bar_interval_s
        if due and not self.feed_silent:
            self.feed_bar = (mono, self.clock.now())
        assert self.feed_bar is not None
        return {
            "streaming": True,
            "last_bar_recv_ts": self.feed_bar[1],
            "last_bar_age_s": mono - self.feed_bar[0],
            "streaming_for_s": mono,
        }

    def _query(self, args: tuple[Any, ...]) -> Any:
        name = args[0]
        if name == "get_state":
            return self.state.get((args[1], args[2]))
        if name == "events":
            kinds, since = args[1], args[2] if len(args) > 2 else 0
            return [r for r in self.records if r["kind"] in kinds and r["seq"] > since]
        return {}

    async def wait_for_death(self, role: str) -> str:
        child = self.children.get(role)
        if child is None:
            return "no handle"
        await child.died.wait()
        return child.cause

    def send(self, role: str, method: Callable[..., Any], *args: Any) -> None:
        self.sent.append((role, method.__name__, args))

    async def kill(self, role: str) -> None:
        await asyncio.sleep(0)  # a real kill waits for the name to be free
        self.killed.append(role)
        self.playing.pop(role, None)
        child = self.children.pop(role, None)
        if child is not None:
            child.die("killed")

    async def journal(self, records: list[Any], state: list[Any], *, retry_s: float) -> None:
        await asyncio.sleep(0)
        if not self._journal_reachable():
            raise OperationalError(f"journal unavailable for {retry_s:.0f}s")
        self._commit(records, state)

    def append(self, records: list[Any], state: list[Any]) -> None:
        if self.hold_appends:
            self.held.append((records, state))
        elif self._journal_reachable():
            self._commit(records, state)
        else:
            self.pending.append((records, state))

    def resend(self, role: str) -> None:
        if role == "journal" and self._journal_reachable():
            self.journal_back()

    def abandon(self, role: str) -> None:
        self.abandoned.add(role)

    def inflight(self) -> int:
        return len(self.held)

    async def nodes(self) -> list[NodeInfo]:
        await asyncio.sleep(0)
        if self.head_down:
            raise TimeoutError("GCS unreachable")
        return list(self.node_table)

    def undelivered(self) -> int:
        return len(self.pending)

    def _journal_reachable(self) -> bool:
        child = self.children.get("journal")
        return self.journal_up and child is not None and child.alive

    def _commit(self, records: list[Any], state: list[Any]) -> None:
        seen = {r["event_id"] for r in self.records}
        for record in records:
            if record.event_id not in seen:  # idempotent by event id, like the journal
                seq = len(self.records) + 1
                self.records.append(
                    {"seq": seq, "kind": record.kind, "data": record.data}
                    | {"event_id": record.event_id}
                )
        for write in state:
            self.state[(write.scope, write.key)] = write.data


def config(**supervisor: Any) -> TradeplaneConfig:
    sup = {"recovery_jitter": 0.0, "recovery_cooldown_s": 1.0, "monitor_interval_s": 1.0}
    return TradeplaneConfig.model_validate(
        {
            "deployment": {"name": "t"},
            "venue": {"sim": {"symbols": ["ACME"]}},
            "strategies": [{"name": "a", "path": "x.py", "class_name": "A"}],
            "supervisor": sup | supervisor,
        }
    )


def supervisor(
    clock: FakeClock | None = None,
    adapter: FakeAdapter | None = None,
    placements: dict[str, Placement] | None = None,
    **cfg: Any,
) -> tuple[Supervisor, FakeAdapter, FakeClock]:
    clock = clock or FakeClock()
    adapter = adapter or FakeAdapter(clock)
    where = placements or {}
    specs: list[Any] = [FakeSpec(role, where.get(role, Placement())) for role in ROLES]
    state_node = NodeInfo(STATE_NODE, "10.0.0.1", alive=True)
    sup = Supervisor(config(**cfg), "run-1", specs, adapter, clock, state_node=state_node)
    return sup, adapter, clock
