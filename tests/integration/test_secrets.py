"""Invariant 8 end to end: a configured credential reaches no state file, no Ray log and no CLI
output. Each search is shown to work by finding the secret where it is known to be."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import ray
from ray import cloudpickle
from ray.actor import ActorClass

from tests.helpers import eventually
from tests.integration.harness import heartbeat, live_status, running, wait_for_kind
from tests.otlp_receiver import OtlpReceiver
from tradeplane.actors.journal import JournalActor
from tradeplane.config.loading import load_config, secret_values
from tradeplane.config.models import TradeplaneConfig
from tradeplane.config.settings import without_credentials
from tradeplane.journal.reader import JournalReader
from tradeplane.journal.records import JournalRecord, StateWrite
from tradeplane.protocol.events import EventKind
from tradeplane.protocol.roles import ROLE_BROKER, ROLE_JOURNAL
from tradeplane.supervisor.specs import child_specs

pytestmark = pytest.mark.usefixtures("ray_session")

HERE = Path(__file__).resolve().parent
TRADEPLANE = str(Path(sys.executable).parent / "tradeplane")


def files_containing(root: Path, needle: str) -> list[Path]:
    """Every regular file under ``root`` whose bytes contain ``needle``."""
    raw = needle.encode()
    hits = []
    for path in sorted(root.rglob("*")):
        try:
            if path.is_file() and raw in path.read_bytes():
                hits.append(path)
        except OSError:  # a file rotated or removed while we looked
            continue
    return hits


def ray_logs_dir() -> Path:
    node = ray._private.worker._global_node
    assert node is not None, "the tests' Ray runs in this process"
    logs = Path(node.get_logs_dir_path())
    assert logs.is_dir() and any(logs.glob("worker-*")), f"no worker logs in {logs}"
    return logs


def configure(
    tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch, extra_toml: str = ""
) -> tuple[TradeplaneConfig, list[str]]:
    """A paper deployment loaded from a file, with credentials in the ``.env`` beside it, where
    the actors on this node read them (the test's Ray started before this environment was set),
    and in this process's environment, where the CLI it runs finds them to mask."""
    planted = [f"acct-{secrets.token_hex(12)}", f"apisecret-{secrets.token_hex(12)}"]
    monkeypatch.setenv("TRADEPLANE_ACCOUNT_ID", planted[0])
    monkeypatch.setenv("TRADEPLANE_API_SECRET", planted[1])
    (tmp_path / ".env").write_text(
        f"TRADEPLANE_ACCOUNT_ID={planted[0]}\nTRADEPLANE_API_SECRET={planted[1]}\n"
    )
    path = tmp_path / "deploy.toml"
    path.write_text(
        f"""
[deployment]
name = "sec{os.getpid()}-{secrets.token_hex(3)}"
mode = "paper"
state_dir = "{state}"

[venue]
kind = "sim"

[venue.sim]
symbols = ["AAA", "BBB"]
speed = 600.0
history_bars = 0
seed = 3

[supervisor]
feed_silence_s = 10.0

[[strategies]]
name = "flip"
path = "{HERE / "strategies" / "flipper.py"}"
class_name = "Flipper"
params = {{ every = 1, limit_every = 3 }}
{extra_toml}
"""
    )
    cfg = load_config(path)
    # Control: the secrets are really configured, so the deployment carries them.
    assert sorted(secret_values(cfg)) == sorted(planted)
    return cfg, planted


def cli(*args: str) -> str:
    out = subprocess.run(
        [TRADEPLANE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout + out.stderr


@ray.remote(num_cpus=0)
def _print_and_log(text: str) -> None:
    import logging

    print(f"control output: {text}", flush=True)
    logging.getLogger("tradeplane.test").error("control log: %s", text)


def test_a_paper_deployment_leaves_its_credentials_in_no_file_log_span_metric_or_cli_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    receiver = OtlpReceiver().start()
    telemetry = (
        f'[telemetry]\ntraces_exporter = "otlp-grpc"\notlp_endpoint = "{receiver.grpc_url}"\n'
        "metrics_port = 0\n"
    )
    cfg, planted = configure(tmp_path, state, monkeypatch, telemetry)
    name = cfg.deployment.name
    logs = ray_logs_dir()
    outputs = []
    with running(cfg):
        wait_for_kind(state, "order_filled", 5)
        # Control: the broker holds the credentials (read on its node), so they could leak.
        broker = heartbeat(name, "broker")["credentials"]
        assert broker["set"] == ["account_id", "api_secret"], broker
        with JournalReader.open(state) as j:
            metrics = j.events(kinds=["telemetry_started"])[-1]["data"]["metrics"]
        with urllib.request.urlopen(metrics, timeout=5) as resp:
            outputs.append(resp.read().decode())
        # Read while it writes, as an operator would, with the secrets in the CLI's environment.
        outputs.append(cli("status", name, "--state-dir", str(state)))
        outputs.append(cli("status", name, "--state-dir", str(state), "--json"))
        outputs.append(cli("journal", "tail", name, "--state-dir", str(state), "-n", "50"))
    export = tmp_path / "traces.json"
    cli("trace", "export", name, "--state-dir", str(state), "--out", str(export))
    outputs.append(export.read_text())
    receiver.wait_for(lambda spans: any(s.name == "broker.fill" for s in spans))
    receiver.stop()
    outputs.append(repr(receiver.spans()))
    assert (state / "journal.db").is_file() and (state / "journal.jsonl").is_file()
    # Controls: each search finds what is known to be there.
    # the CLI, the metrics endpoint, the trace export and the collector showed the deployment
    assert all("flip" in text for text in outputs)
    assert files_containing(state, "order_filled"), "the journal files are searched"
    assert os.environ["TRADEPLANE_ACCOUNT_ID"] == planted[0]  # unredacted: the test's own env
    for secret in planted:
        assert files_containing(state, secret) == []
        assert files_containing(logs, secret) == []
        for text in outputs:
            assert secret not in text
    # Control: what a Ray worker prints or logs does land where the logs were searched.
    ray.get(_print_and_log.remote(planted[0]))
    eventually(lambda: files_containing(logs, planted[0]), what="control secret in Ray logs")


def test_the_journal_masks_a_secret_that_reaches_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    cfg, (account, api_secret) = configure(tmp_path, state, monkeypatch)
    name = cfg.deployment.name
    leak = JournalRecord(
        event_id="venue-error/1",
        kind=EventKind.VENUE_MESSAGE_REJECTED,
        ts=time.time(),
        deployment=name,
        data={"message": f"auth failed for {account}", "request": [{"sig": api_secret}]},
    )
    session = StateWrite("venue", "session", {"token": api_secret}, time.time())

    def journal_it(directory: Path, journal_cfg: object) -> None:
        actor = JournalActor.options(num_cpus=0).remote(name, str(directory), journal_cfg)  # type: ignore[attr-defined]
        try:
            ray.get(actor.append.remote([leak], [session]), timeout=60)
            ray.get(actor.close.remote(), timeout=60)
        finally:
            ray.kill(actor)

    # The config without its credentials, as deployed: the journal reads them on its node.
    journal_it(state, without_credentials(cfg))
    for secret in (account, api_secret):
        assert files_containing(state, secret) == []
    assert files_containing(state, "auth failed for ***")
    with JournalReader.open(state) as reader:
        (event,) = reader.events(kinds=["venue_message_rejected"])
        assert event["data"] == {"message": "auth failed for ***", "request": [{"sig": "***"}]}
        assert reader.get_state("venue", "session") == {"token": "***"}
    # Control: a journal that is not told the secrets writes them as given.
    unprotected = tmp_path / "unprotected"
    journal_it(unprotected, cfg.journal)
    assert files_containing(unprotected, account)


def test_no_actor_argument_carries_a_credential_yet_the_broker_reads_them_on_its_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    cfg, planted = configure(tmp_path, state, monkeypatch)
    # One from the state dir's .env instead: the file the state node's actors read.
    (tmp_path / ".env").write_text(f"TRADEPLANE_ACCOUNT_ID={planted[0]}\n")
    state.mkdir()
    (state / ".env").write_text(f"TRADEPLANE_API_SECRET={planted[1]}\n")
    created: list[tuple[str, tuple[object, ...], dict[str, object]]] = []
    original = ActorClass._remote

    def capturing(
        self: ActorClass[object], args: object = None, kwargs: object = None, **options: object
    ) -> object:
        created.append((self.__ray_metadata__.class_name, (args, kwargs), options))
        return original(self, args=args, kwargs=kwargs, **options)

    monkeypatch.setattr(ActorClass, "_remote", capturing)
    with running(cfg) as run:
        live = eventually(
            lambda: (live_status(run.name).get("broker") or {}).get("credentials"),
            what="the broker's credentials in status",
        )
        credentials = heartbeat(run.name, ROLE_BROKER)["credentials"]
    assert credentials["set"] == ["account_id", "api_secret"]
    assert credentials["from"] == [str(tmp_path / ".env"), str(state / ".env")]
    assert live == credentials  # what `tradeplane status` shows: names and files, no values
    # The supervisor is created here; every child by the supervisor, from the child specs of
    # the config it was given (at deploy and at every restart): rebuild them from that.
    # Two supervisor instances: the one acting and its standby (``core.succession``); both
    # are checked below with everything else shipped.
    supervisors = [(args, opts) for cls, args, opts in created if cls == "SupervisorActor"]
    assert len(supervisors) == 2
    (sup_args, sup_kwargs), sup_options = supervisors[0]
    assert isinstance(sup_args, tuple) and not sup_kwargs
    cfg_arg, run_id, sources = sup_args[:3]  # then where it runs: its state node, a lost one
    specs = child_specs(cfg_arg, run_id, sources)
    assert {ROLE_JOURNAL, ROLE_BROKER} <= {s.role for s in specs}
    shipped = [cloudpickle.dumps((args, opts)) for _, args, opts in created]
    shipped += [cloudpickle.dumps((s.args, s.options)) for s in specs]
    for blob in shipped:
        for secret in planted:
            assert secret.encode() not in blob
    # Control: the search finds a credential in a pickled argument that carries one.
    assert planted[0].encode() in cloudpickle.dumps(((cfg,), sup_options))
