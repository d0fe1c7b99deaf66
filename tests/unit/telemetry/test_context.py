"""W3C trace context: parsing, derived ids and the TraceIdRatioBased sampling rule."""

from __future__ import annotations

import re

import pytest
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased

from tradeplane.telemetry.context import (
    BROKER_FILL,
    BROKER_SUBMIT,
    RISK_CHECK,
    STRATEGY_INTENT,
    SUPERVISOR_RUN,
    TraceContext,
    intent_context,
    parse_traceparent,
    risk_check_context,
    run_context,
    sampled,
    span_id,
    submit_context,
    trace_id_for,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")


def derived_trace_ids(n: int) -> list[str]:
    return [trace_id_for("demo", f"intent-{i}") for i in range(n)]


# -- traceparent ---------------------------------------------------------------------------------


@pytest.mark.parametrize("is_sampled", [True, False])
def test_context_when_formatted_and_parsed_then_round_trips(is_sampled: bool) -> None:
    ctx = TraceContext(TRACE, SPAN, is_sampled)

    text = ctx.traceparent

    assert text == f"00-{TRACE}-{SPAN}-{'01' if is_sampled else '00'}"
    assert parse_traceparent(text) == ctx


def test_traceparent_when_flags_have_other_bits_then_only_the_sampled_bit_counts() -> None:
    assert parse_traceparent(f"00-{TRACE}-{SPAN}-03") == TraceContext(TRACE, SPAN, True)
    assert parse_traceparent(f"00-{TRACE}-{SPAN}-02") == TraceContext(TRACE, SPAN, False)


def test_traceparent_when_uppercase_then_accepted_and_normalised_to_lowercase() -> None:
    ctx = parse_traceparent(f"00-{TRACE.upper()}-{SPAN.upper()}-01")

    assert ctx == TraceContext(TRACE, SPAN, True)


def test_traceparent_when_surrounded_by_whitespace_then_accepted() -> None:
    assert parse_traceparent(f"  00-{TRACE}-{SPAN}-01\n") == TraceContext(TRACE, SPAN, True)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"01-{TRACE}-{SPAN}-01",  # unknown version
        f"ff-{TRACE}-{SPAN}-01",  # forbidden version
        f"0-{TRACE}-{SPAN}-01",
        f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero span id
        f"00-{TRACE[:-1]}-{SPAN}-01",  # trace id too short
        f"00-{TRACE}0-{SPAN}-01",  # trace id too long
        f"00-{TRACE}-{SPAN[:-1]}-01",  # span id too short
        f"00-{TRACE}-{SPAN}0-01",  # span id too long
        f"00-{TRACE}-{SPAN}-1",  # flags too short
        f"00-{TRACE}-{SPAN}-001",  # flags too long
        f"00-{TRACE[:-1]}g-{SPAN}-01",  # not hex
        f"00-{TRACE}-{SPAN}-01-extra",  # version 00 has exactly four fields
        f"00_{TRACE}_{SPAN}_01",
    ],
)
def test_traceparent_when_invalid_then_none(value: str | None) -> None:
    assert parse_traceparent(value) is None


# -- derived ids ---------------------------------------------------------------------------------


def test_trace_id_when_derived_twice_then_same_lowercase_hex() -> None:
    first = trace_id_for("demo", "i1")

    assert first == trace_id_for("demo", "i1")
    assert HEX32.match(first)
    assert first != "0" * 32


def test_trace_id_when_deployment_or_key_differ_then_distinct() -> None:
    ids = {
        trace_id_for("demo", "i1"),
        trace_id_for("demo", "i2"),
        trace_id_for("other", "i1"),
        trace_id_for("demoi", "1"),  # the separator keeps the parts apart
    }

    assert len(ids) == 4
    assert len(set(derived_trace_ids(2000))) == 2000


def test_span_id_when_derived_twice_then_same_lowercase_hex() -> None:
    sid = span_id(TRACE, BROKER_SUBMIT, "c1")

    assert sid == span_id(TRACE, BROKER_SUBMIT, "c1")
    assert HEX16.match(sid)
    assert sid != "0" * 16


def test_span_id_when_name_key_or_trace_differ_then_distinct() -> None:
    other_trace = trace_id_for("demo", "i2")
    ids = {
        span_id(TRACE, BROKER_SUBMIT, "c1"),
        span_id(TRACE, BROKER_SUBMIT, "c2"),
        span_id(TRACE, BROKER_FILL, "c1"),
        span_id(TRACE, RISK_CHECK, "c1"),
        span_id(TRACE, BROKER_SUBMIT),
        span_id(other_trace, BROKER_SUBMIT, "c1"),
    }

    assert len(ids) == 6


def test_child_when_asked_then_same_trace_and_flags_with_derived_span() -> None:
    parent = TraceContext(TRACE, SPAN, False)

    child = parent.child(BROKER_FILL, "f1")

    assert child == TraceContext(TRACE, span_id(TRACE, BROKER_FILL, "f1"), False)


def test_run_context_when_derived_then_sampled_root_distinct_from_an_intent_of_same_id() -> None:
    run = run_context("demo", "r1")

    assert run == run_context("demo", "r1")
    assert run.sampled is True
    assert run.trace_id == trace_id_for("demo", "run:r1")
    assert run.span_id == span_id(run.trace_id, SUPERVISOR_RUN, "r1")
    assert run.trace_id != intent_context("demo", "r1").trace_id
    assert run.trace_id != run_context("demo", "r2").trace_id


# -- sampling ------------------------------------------------------------------------------------


def test_sampled_when_ratio_zero_then_never() -> None:
    assert not any(sampled(t, 0.0) for t in derived_trace_ids(2000))
    assert not sampled("f" * 16 + "0" * 15 + "1", 0.0)


def test_sampled_when_ratio_one_then_always() -> None:
    assert all(sampled(t, 1.0) for t in derived_trace_ids(2000))
    assert sampled("0" * 16 + "f" * 16, 1.0)


def test_sampled_when_ratio_half_then_about_half_and_deterministic() -> None:
    ids = derived_trace_ids(2000)

    first = [sampled(t, 0.5) for t in ids]

    assert 900 <= sum(first) <= 1100
    assert first == [sampled(t, 0.5) for t in ids]


@pytest.mark.parametrize("ratio", [0.0, 0.001, 0.1, 0.5, 0.9, 1.0])
def test_sampled_when_compared_with_the_sdk_sampler_then_same_decision(ratio: float) -> None:
    sdk = TraceIdRatioBased(ratio)

    for t in derived_trace_ids(2000):
        sdk_says = sdk.should_sample(None, int(t, 16), "x").decision
        assert sampled(t, ratio) is (sdk_says is Decision.RECORD_AND_SAMPLE), t


def test_sampled_when_lower_64_bits_at_the_bound_then_only_below_is_sampled() -> None:
    high = "f" * 16  # the upper half does not take part
    assert sampled(high + f"{(1 << 63) - 1:016x}", 0.5)
    assert not sampled(high + f"{1 << 63:016x}", 0.5)


def test_intent_context_when_ratio_given_then_flags_follow_the_rule() -> None:
    for i in range(200):
        intent_id = f"intent-{i}"
        trace = trace_id_for("demo", intent_id)
        at_half = intent_context("demo", intent_id, ratio=0.5)

        assert at_half.trace_id == trace
        assert at_half.span_id == span_id(trace, STRATEGY_INTENT, intent_id)
        assert at_half.sampled is sampled(trace, 0.5)
        assert at_half.traceparent.endswith("-01" if sampled(trace, 0.5) else "-00")
        assert intent_context("demo", intent_id, ratio=0.0).traceparent.endswith("-00")
        assert intent_context("demo", intent_id, ratio=1.0).traceparent.endswith("-01")
        assert intent_context("demo", intent_id).sampled is True  # default ratio 1


# -- the intent's chain --------------------------------------------------------------------------


@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_risk_and_submit_contexts_when_derived_then_keep_trace_flags_and_parent_chain(
    ratio: float,
) -> None:
    root = intent_context("demo", "i1", ratio=ratio)

    risk = risk_check_context(root.traceparent, "i1")
    assert risk is not None
    submit = submit_context(risk.traceparent, "c1")
    assert submit is not None

    assert risk.trace_id == submit.trace_id == root.trace_id
    assert risk.sampled is submit.sampled is root.sampled
    assert risk.span_id == span_id(root.trace_id, RISK_CHECK, "i1")
    assert submit.span_id == span_id(root.trace_id, BROKER_SUBMIT, "c1")
    assert len({root.span_id, risk.span_id, submit.span_id}) == 3


@pytest.mark.parametrize("bad", [None, "", "00-nope", f"00-{'0' * 32}-{SPAN}-01"])
def test_risk_and_submit_contexts_when_parent_invalid_then_none(bad: str | None) -> None:
    assert risk_check_context(bad, "i1") is None
    assert submit_context(bad, "c1") is None
