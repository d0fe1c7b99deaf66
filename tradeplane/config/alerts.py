"""The ``[alerts]`` config section: a webhook the deployment POSTs its operator events to.

The URL may carry a token (in its path, query or user info: Slack, PagerDuty and most chat
webhooks do), so it is a secret: masked in the config's repr, dumps and errors, registered for
redaction in every actor's log, and shown in ``status`` only as ``display_url`` gives it.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from tradeplane.config.base import FrozenModel


class AlertsConfig(FrozenModel):
    webhook_url: SecretStr | None = None
    """``http(s)://`` URL each operator event is POSTed to as JSON (kill switch tripped, health
    failed or feed silent, recovery exhausted, journal lost, drift alert, spans dropped), with
    the journal's ``event_id`` as its ``Idempotency-Key``. A secret: never shown whole. Default
    unset (no webhook)."""
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    """Longest one POST may take before it counts as failed and is retried. Default 5."""
    retry_first_s: float = Field(default=1.0, gt=0, le=60)
    """Wait before the first retry of a failed POST; it doubles (with jitter) on each further
    failure, up to ``retry_max_s``. Default 1."""
    retry_max_s: float = Field(default=60.0, gt=0, le=3600)
    """Longest wait between two tries of the same event. Default 60."""
    max_queue_events: int = Field(default=1000, ge=1, le=100_000)
    """Events waiting for a down receiver; beyond this the oldest are dropped and counted
    (``tradeplane_alerts_dropped_total``). Default 1,000."""

    @field_validator("webhook_url")
    @classmethod
    def _url_ok(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None:
            return None
        # The message never repeats the URL: it may hold a token.
        try:
            parts = urlsplit(v.get_secret_value())
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError:
            raise ValueError("webhook_url is not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook_url must be an http:// or https:// URL with a host")
        return v

    @model_validator(mode="after")
    def _retry_order(self) -> AlertsConfig:
        if self.retry_first_s > self.retry_max_s:
            raise ValueError("retry_first_s must not exceed retry_max_s")
        return self

    def url(self) -> str | None:
        return None if self.webhook_url is None else self.webhook_url.get_secret_value()


def display_url(url: str) -> str:
    """``url`` as status and logs show it: scheme, host and port, the rest masked (a webhook's
    path is often its token), e.g. ``https://hooks.example.com/***``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = parts.port
    except ValueError:
        return "***"
    if ":" in host:
        host = f"[{host}]"
    shown = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    masked = parts.path not in ("", "/") or parts.query or parts.fragment
    return shown + ("/***" if masked else "/")


def url_secrets(url: str) -> list[str]:
    """The parts of ``url`` to register for redaction: the whole of it, its path and query,
    the password of its user info and each query value."""
    out = [url]
    try:
        parts = urlsplit(url)
    except ValueError:
        return out
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    if rest not in ("", "/"):
        out.append(rest)
    if parts.password:
        out.append(parts.password)
    out.extend(value for _, value in parse_qsl(parts.query))
    return out
