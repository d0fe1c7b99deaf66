"""The supervisor's trace from its journal events: ``supervisor.run`` per run, with
``supervisor.health``, ``supervisor.recovery`` (attempt to outcome) and one span per other
supervisor event as children."""

from __future__ import annotations

from tradeplane.protocol.events import EventKind
from tradeplane.telemetry.context import SUPERVISOR_RUN, run_context, span_id
from tradeplane.telemetry.model import AttributeValue, SpanEvent, TraceSpan
from tradeplane.telemetry.span_values import (
    Event,
    attrs,
    event_ts,
    first_number,
    number,
    root_span,
)

SUPERVISOR_KINDS = frozenset(
    {
        EventKind.HEALTH_CHANGED,
        EventKind.RECOVERY_ATTEMPT,
        EventKind.RECOVERY_SUCCEEDED,
        EventKind.RECOVERY_FAILED,
        EventKind.RECOVERY_EXHAUSTED,
        EventKind.JOURNAL_LOST,
        EventKind.STRATEGY_ERROR,
        EventKind.STRATEGY_SUSPENDED,
        EventKind.SUPERVISOR_REATTACHED,
        EventKind.FEED_STARTED,
        EventKind.DEPLOYMENT_STOPPED,
        EventKind.DEPLOYMENT_FAILED,
        EventKind.KILL_SWITCH_ACTIVATED,
        EventKind.KILL_SWITCH_CLEARED,
        EventKind.HALT_FAILED,
        EventKind.HALT_SUCCEEDED,
        EventKind.CANCEL_ALL_FAILED,
    }
)

_FAILURE_KINDS = (
    EventKind.RECOVERY_EXHAUSTED,
    EventKind.JOURNAL_LOST,
    EventKind.DEPLOYMENT_FAILED,
    EventKind.STRATEGY_ERROR,
    EventKind.HALT_FAILED,
    EventKind.CANCEL_ALL_FAILED,
)


class SupervisorTrace:
    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id
        self._attempts: dict[tuple[str, int], float] = {}
        self.skipped = 0  # events with no run to attach to

    def run_started(self, ev: Event) -> list[TraceSpan]:
        data = ev.get("data") or {}
        run_id = data.get("run_id")
        if not run_id:
            return []
        self.run_id = str(run_id)
        ctx = run_context(str(ev.get("deployment")), self.run_id)
        end = event_ts(ev)
        start = first_number(data.get("started_ts"), end)
        run = attrs(
            deployment=ev.get("deployment"),
            run_id=self.run_id,
            mode=data.get("mode"),
            venue=data.get("venue"),
            strategies=",".join(map(str, data.get("strategies") or [])),
        )
        return [root_span(ctx, SUPERVISOR_RUN, "supervisor", start, end, run, ev)]

    def event(self, ev: Event, kind: str) -> list[TraceSpan]:
        data = ev.get("data") or {}
        ts = event_ts(ev)
        if kind == EventKind.RECOVERY_ATTEMPT:
            key = (str(data.get("target")), int(data.get("attempt") or 0))
            self._attempts[key] = ts
            if len(self._attempts) > 10_000:
                self._attempts.pop(next(iter(self._attempts)))
        run_id = str(data.get("run_id") or self.run_id or "")
        if not run_id:
            self.skipped += 1
            return []
        ctx = run_context(str(ev.get("deployment")), run_id)
        name, start, status, message = f"supervisor.{kind}", ts, "unset", None
        extra: dict[str, AttributeValue] = {}
        if kind == EventKind.HEALTH_CHANGED:
            name = "supervisor.health"
            extra = attrs(
                health=data.get("health"), previous=data.get("previous"), reason=data.get("reason")
            )
        elif kind in (EventKind.RECOVERY_SUCCEEDED, EventKind.RECOVERY_FAILED):
            name = "supervisor.recovery"
            key = (str(data.get("target")), int(data.get("attempt") or 0))
            took = number(data.get("took_s"))
            start = self._attempts.pop(key, ts - took if took is not None else ts)
            ok = kind == EventKind.RECOVERY_SUCCEEDED
            status, message = ("ok", None) if ok else ("error", str(data.get("error") or ""))
            extra = attrs(
                target=data.get("target"),
                attempt=data.get("attempt"),
                outcome="succeeded" if ok else "failed",
                took_s=took,
            )
        else:
            extra = {
                k: v
                for k, v in attrs(
                    target=data.get("target"),
                    attempt=data.get("attempt"),
                    cause=data.get("cause"),
                    reason=data.get("reason"),
                    error=data.get("error"),
                    strategy=ev.get("strategy") or data.get("strategy"),
                ).items()
            }
            if kind in _FAILURE_KINDS:
                status, message = "error", str(data.get("reason") or data.get("error") or kind)
        return [
            TraceSpan(
                trace_id=ctx.trace_id,
                span_id=span_id(ctx.trace_id, name, str(ev.get("event_id") or ev.get("seq"))),
                parent_span_id=ctx.span_id,
                name=name,
                component="supervisor",
                start_ts=min(start, ts),
                end_ts=ts,
                attributes={
                    **attrs(deployment=ev.get("deployment"), run_id=run_id),
                    **extra,
                },
                events=(SpanEvent(kind, ts, extra),),
                status=status,  # type: ignore[arg-type]
                status_message=message,
                journal_seq=ev.get("seq"),
            )
        ]
