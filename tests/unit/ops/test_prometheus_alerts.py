"""ops/prometheus/alerts.yml: valid rules (``promtool check rules``), each alert firing and not
firing as ops/prometheus/alerts_test.yml says (``promtool test rules``), and every metric it
names one tradeplane registers. promtool comes from the distribution's ``prometheus`` package
(``make promtool`` unpacks it into .venv/bin); without it the promtool tests skip."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
RULES_DIR = ROOT / "ops" / "prometheus"
RULES = RULES_DIR / "alerts.yml"
RULES_TEST = RULES_DIR / "alerts_test.yml"
WANTED_ALERTS = {
    "TradeplaneKillSwitchActive",
    "TradeplaneHealthFailed",
    "TradeplaneFeedSilent",
    "TradeplaneRecoveryExhausted",
    "TradeplaneJournalLost",
    "TradeplaneDriftAlert",
    "TradeplaneSpansDropped",
}


def promtool() -> str:
    beside = Path(sys.executable).parent / "promtool"  # where `make promtool` unpacks it
    found = (
        os.environ.get("TRADEPLANE_PROMTOOL")
        or shutil.which("promtool")
        or (str(beside) if beside.is_file() else None)
    )
    if found is None:
        pytest.skip(
            "no promtool on PATH or in .venv/bin (`make promtool` unpacks it from the "
            "distribution's prometheus package; or set TRADEPLANE_PROMTOOL)"
        )
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=60
    )


def rules() -> list[dict[str, object]]:
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_alert_rules_when_checked_by_promtool_then_valid() -> None:
    done = run_promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(WANTED_ALERTS)} rules found" in done.stdout


def test_alert_rules_when_fed_the_test_series_then_each_fires_and_resolves_as_expected() -> None:
    done = run_promtool("test", "rules", RULES_TEST.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rules_then_one_per_operator_signal_each_with_severity_and_annotations() -> None:
    found = {str(rule["alert"]): rule for rule in rules()}
    assert set(found) == WANTED_ALERTS
    tested = set(re.findall(r"alertname: (\w+)", RULES_TEST.read_text(encoding="utf-8")))
    assert tested == WANTED_ALERTS
    for name, rule in found.items():
        labels, notes = rule["labels"], rule["annotations"]
        assert isinstance(labels, dict) and labels["severity"] in {"critical", "warning"}, name
        assert isinstance(notes, dict) and "{{ $labels.deployment }}" in notes["summary"], name
        assert "for" in rule, name


def test_alert_rules_then_every_metric_named_is_one_tradeplane_registers() -> None:
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tradeplane").rglob("*.py"))
    named = {m for rule in rules() for m in re.findall(r"tradeplane_\w+", str(rule["expr"]))}
    assert named
    for metric in named:
        registered = metric.removeprefix("tradeplane_").removesuffix("_total")
        assert f'"{registered}"' in source, f"{metric}: no metric {registered!r} in tradeplane/"
