"""The variables tradeplane reads from the environment and ``.env``: one model per set, each
field named by its variable, validating any mapping (a test's, or one already merged). A bad
value fails validation naming the variable, never printing a credential.

``config.settings`` reads them from the process environment and ``.env`` (pydantic-settings);
this module stays free of it, so an actor that only checks a config does not import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

if TYPE_CHECKING:
    from tradeplane.config.models import CredentialsConfig


def _var(name: str) -> Any:
    return Field(None, alias=name)


class _Variables(BaseModel):
    """A set of variables, each field read from the variable its alias names."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=False)

    @classmethod
    def of(cls, env: Mapping[str, str]) -> Self:
        return cls.model_validate(dict(env))


class CredentialVars(_Variables):
    """``venue.credentials`` by the variable each comes from; an empty one is unset."""

    api_key: SecretStr | None = _var("TRADEPLANE_API_KEY")
    api_secret: SecretStr | None = _var("TRADEPLANE_API_SECRET")
    passphrase: SecretStr | None = _var("TRADEPLANE_API_PASSPHRASE")
    account_id: SecretStr | None = _var("TRADEPLANE_ACCOUNT_ID")

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    def config(self) -> CredentialsConfig:
        from tradeplane.config.models import CredentialsConfig  # models imports this module

        return CredentialsConfig(**{k: v for k, v in self if v is not None})

    def values(self) -> dict[str, str]:
        """The plain values set, by ``venue.credentials`` field (to register for redaction)."""
        return {k: v.get_secret_value() for k, v in self if v is not None}


class OverrideVars(_Variables):
    """The variables that override config fields (README: state dir, feed URLs, IB address,
    OpenTelemetry). Surrounding blanks are dropped; a blank one is unset."""

    state_dir: str | None = _var("TRADEPLANE_STATE_DIR")
    okx_rest_url: str | None = _var("TRADEPLANE_OKX_REST_URL")
    okx_ws_url: str | None = _var("TRADEPLANE_OKX_WS_URL")
    binance_rest_url: str | None = _var("TRADEPLANE_BINANCE_REST_URL")
    binance_ws_url: str | None = _var("TRADEPLANE_BINANCE_WS_URL")
    ib_host: str | None = _var("IB_HOST")
    ib_port: int | None = _var("IB_PORT")
    ib_client_id: int | None = _var("IB_CLIENT_ID")
    ib_account: str | None = _var("IB_ACCOUNT")
    otel_traces_exporter: str | None = _var("OTEL_TRACES_EXPORTER")
    otel_exporter_otlp_protocol: str | None = _var("OTEL_EXPORTER_OTLP_PROTOCOL")
    otel_exporter_otlp_endpoint: str | None = _var("OTEL_EXPORTER_OTLP_ENDPOINT")
    otel_service_name: str | None = _var("OTEL_SERVICE_NAME")
    otel_traces_sampler: str | None = _var("OTEL_TRACES_SAMPLER")
    otel_traces_sampler_arg: str | None = _var("OTEL_TRACES_SAMPLER_ARG")

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return value

    def by_variable(self) -> dict[str, Any]:
        """The variables set, by name."""
        return self.model_dump(by_alias=True, exclude_none=True)


def describe(exc: ValidationError) -> str:
    """One line per bad variable: its name and what is wrong, never its value."""
    return "\n  ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


CREDENTIAL_ENV = {name: str(info.alias) for name, info in CredentialVars.model_fields.items()}
"""``venue.credentials`` field -> the environment (or ``.env``) variable it comes from."""
