"""The operator's path: OTEL_* variables in the shell of `tradeplane run` reach the actors (Ray
workers do not inherit that shell), and `tradeplane trace` reads the chain back offline."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

from tests.integration.test_run_cli import ROOT, TRADEPLANE, run_demo, run_env
from tests.otlp_receiver import OtlpReceiver
from tradeplane.journal.reader import JournalReader
from tradeplane.telemetry.jaeger import parse_jaeger_json


def test_otel_env_of_the_operator_shell_then_spans_reach_that_collector_and_trace_reads_back(
    ray_address: str, tmp_path: Path
) -> None:
    state = tmp_path / "demo"
    with OtlpReceiver() as rx:
        env = run_env()
        env.update(
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_EXPORTER_OTLP_ENDPOINT=rx.http_url,
            OTEL_SERVICE_NAME="tpenv",
            OTEL_TRACES_SAMPLER_ARG="1.0",
        )
        out = run_demo(ray_address, state, env)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        spans = rx.spans()
    assert spans, "no span reached the collector named by OTEL_EXPORTER_OTLP_ENDPOINT"
    assert {s.transport for s in spans} == {"http"}
    services = {s.service for s in spans}
    assert "tpenv-supervisor" in services and all(str(s).startswith("tpenv-") for s in services)

    with JournalReader.open(state) as j:
        intents = j.events(kinds=["intent"])
    assert intents, "the demo produced no intent in 12 s"
    coid = intents[0]["client_order_id"]
    shown = subprocess.run(
        [TRADEPLANE, "trace", coid, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    trace_id = intents[0]["traceparent"].split("-")[1]
    assert trace_id in shown.stdout and "risk.check" in shown.stdout

    out_file = tmp_path / "traces.json"
    exported = subprocess.run(
        [
            TRADEPLANE,
            "trace",
            "export",
            "demo",
            "--state-dir",
            str(state),
            "--format",
            "jaeger-json",
            "--out",
            str(out_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert out_file.stat().st_mode & 0o777 == 0o600
    traces = parse_jaeger_json(out_file.read_text())
    received = Counter(s.trace_id for s in spans)
    for ev in intents:
        tid = ev["traceparent"].split("-")[1]
        assert tid in traces, f"intent {ev['intent_id']} has no trace in the export"
        # The file and the collector saw the same spans of each intent.
        assert len(traces[tid]) == received[tid], (tid, len(traces[tid]), received[tid])
    assert json.loads(out_file.read_text())["data"]
