"""Load a deployment config: TOML file, then ``.env``, then the environment.

Errors name the field's dotted path and the file, so a bad config fails at load, not at trade.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError

from tradeplane.config.env import (
    CREDENTIAL_ENV,
    CredentialVars,
    OverrideVars,
    describe,
)
from tradeplane.config.models import TradeplaneConfig
from tradeplane.config.telemetry import EnvError, apply_otel_env
from tradeplane.config.venues import VenueEnvError, apply_venue_env
from tradeplane.core.errors import OperationalError
from tradeplane.core.redact import Redactor

_INLINE_CREDENTIAL = "credentials come from the environment or .env, never the config file"


class ConfigError(OperationalError):
    """A config that cannot be used; the message names the file and the field."""


def read_dotenv(path: Path) -> dict[str, str]:
    """``path``'s KEY=VALUE lines (``export``, quotes and # comments as python-dotenv reads
    them, no ``${}`` expansion). A line that is not KEY=VALUE fails, naming the line; values
    are never shown."""
    from dotenv.parser import parse_stream  # only the CLI and the driver read .env files

    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    with path.open(encoding="utf-8") as stream:
        for binding in parse_stream(stream):
            if binding.error or (binding.key is not None and binding.value is None):
                raise ConfigError(f"{path}:{binding.original.line}: expected KEY=VALUE")
            if binding.key is not None and binding.value is not None:
                values[binding.key] = binding.value
    return values


def environment(config_dir: Path | None = None) -> dict[str, str]:
    """``.env`` (the config's folder, then cwd) overlaid by the process environment."""
    merged: dict[str, str] = {}
    for dotenv in (d / ".env" for d in (config_dir, Path.cwd()) if d is not None):
        merged.update(read_dotenv(dotenv))
    merged.update(os.environ)
    return merged


def credential_values(env: Mapping[str, str]) -> dict[str, str]:
    """The credentials set (non-empty) in ``env``, by ``venue.credentials`` field."""
    return CredentialVars.of(env).values()


def secret_values(cfg: BaseModel) -> list[str]:
    """Plain values of every non-empty secret field in ``cfg`` (to register for redaction)."""
    out: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr | SecretBytes):
            plain = value.get_secret_value()
            plain = plain.decode(errors="replace") if isinstance(plain, bytes) else plain
            if plain:
                out.append(plain)
        elif isinstance(value, BaseModel):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(cfg)
    return list(dict.fromkeys(out))


def _refuse_inline_credentials(raw: Mapping[str, Any], source: str) -> None:
    """A config file never carries credentials: name each one written there (not its value)."""
    venue = raw.get("venue")
    if not isinstance(venue, dict) or "credentials" not in venue:
        return
    creds = venue["credentials"]
    if isinstance(creds, dict) and not creds:
        return
    fields = sorted(creds) if isinstance(creds, dict) else []
    lines = [f"invalid config {source}:"]
    for field in fields or [""]:
        loc = f"venue.credentials.{field}" if field else "venue.credentials"
        var = CREDENTIAL_ENV.get(field)
        lines.append(f"  {loc}: {_INLINE_CREDENTIAL}" + (f" (set {var})" if var else ""))
    raise ConfigError("\n".join(lines))


def _format_errors(exc: ValidationError, source: str) -> str:
    """One line per error: the field's dotted path and pydantic's message, never the input
    value (pydantic's own ``str(exc)`` prints inputs, which may be secrets)."""
    lines = [f"invalid config {source}:"]
    for err in exc.errors():
        loc = ".".join(_printable(str(p)) for p in err["loc"]) or "(top level)"
        lines.append(f"  {loc}: {_printable(err['msg'])}")
    return "\n".join(lines)


def _printable(text: str) -> str:
    """``text`` with control characters and line breaks escaped: a key from the file (any
    TOML string) must not break the one-line-per-problem message or forge another line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def parse_config(
    data: Mapping[str, Any], *, source: str = "<memory>", base_dir: Path | None = None
) -> TradeplaneConfig:
    try:
        cfg = TradeplaneConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None
    if base_dir is not None:
        strategies = tuple(
            s.model_copy(update={"path": (base_dir / s.path).resolve()})
            if not s.path.is_absolute()
            else s
            for s in cfg.strategies
        )
        cfg = cfg.model_copy(update={"strategies": strategies})
        baseline = cfg.drift.baseline if cfg.drift is not None else None
        if cfg.drift is not None and baseline is not None and not baseline.is_absolute():
            drift = cfg.drift.model_copy(update={"baseline": (base_dir / baseline).resolve()})
            cfg = cfg.model_copy(update={"drift": drift})
    return cfg


def load_config(
    path: Path | str,
    *,
    state_dir: Path | str | None = None,
    env: Mapping[str, str] | None = None,
) -> TradeplaneConfig:
    """Load ``path``; ``state_dir`` (the CLI's ``--state-dir``) overrides the file's."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in {path}: {exc}") from None
    _refuse_inline_credentials(raw, str(path))
    # Imported here: every actor imports this module (secret_values), none of them loads a file.
    from tradeplane.config.settings import (
        Credentials,
        Overrides,
        credential_dotenv_files,
        dotenv_files,
    )

    try:
        if env is None:
            for dotenv in dotenv_files(path.parent):
                read_dotenv(dotenv)  # a malformed line fails here, naming it
            overrides: OverrideVars = Overrides.read(path.parent)
            credentials: CredentialVars = Credentials.read(path.parent)
        else:
            overrides, credentials = OverrideVars.of(env), CredentialVars.of(env)
        if state_dir or overrides.state_dir:
            raw.setdefault("deployment", {})
            if isinstance(raw["deployment"], dict):
                raw["deployment"]["state_dir"] = str(state_dir or overrides.state_dir)
        apply_otel_env(raw, overrides.by_variable())
        apply_venue_env(raw, overrides)
    except ValidationError as exc:
        raise ConfigError(f"invalid environment for {path}:\n  {describe(exc)}") from None
    except (EnvError, VenueEnvError) as exc:
        raise ConfigError(f"invalid environment for {path}:\n  {exc}") from None
    creds = credentials.values()
    if creds:
        raw.setdefault("venue", {})
        if isinstance(raw["venue"], dict):
            raw["venue"]["credentials"] = creds
    try:
        cfg = parse_config(raw, source=str(path), base_dir=path.parent.resolve())
    except ConfigError as exc:  # a message that quotes a credential must not carry it on
        raise ConfigError(Redactor(creds.values()).redact(str(exc))) from None
    for s in cfg.strategies:
        if not s.path.is_file():
            raise ConfigError(
                f"invalid config {path}:\n  strategies.{s.name}.path: no file {s.path}"
            )
    # Pin the state dir to an absolute path so every actor, whatever its cwd, agrees on it.
    state = cfg.deployment.resolved_state_dir()
    dep = cfg.deployment.model_copy(update={"state_dir": state})
    if env is None:
        # The state dir's .env too (the one the broker and the journal read on the state node),
        # so this process masks what they use.
        read_dotenv(state / ".env")  # a malformed line fails here, naming it
        files = credential_dotenv_files(path.parent, Path.cwd(), state)
        venue = cfg.venue.model_copy(update={"credentials": Credentials.read_files(files).config()})
        cfg = cfg.model_copy(update={"venue": venue})
    return cfg.model_copy(
        update={"deployment": dep, "source_path": path.resolve(), "loaded_from_dir": Path.cwd()}
    )
