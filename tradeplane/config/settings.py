"""The environment and ``.env`` sources of a deployment's variables, on pydantic-settings: the
process environment over ``.env`` files (the config's folder, then the working directory, the
later winning). Variable names are case-sensitive; an empty one is unset.

``Credentials`` loads on its own, so the process that talks to the venue can read its
credentials from its own node's environment (and ``.env``) rather than receive them: no actor
argument carries one (Ray's GCS keeps actor arguments). ``node_credentials`` is what the broker
and the journal call on their node.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Self

from pydantic_settings import BaseSettings, SettingsConfigDict

from tradeplane.config.env import CREDENTIAL_ENV, CredentialVars, OverrideVars

if TYPE_CHECKING:
    from tradeplane.config.models import CredentialsConfig, TradeplaneConfig

_SETTINGS = SettingsConfigDict(
    extra="ignore", frozen=True, case_sensitive=True, env_ignore_empty=True
)


def dotenv_files(config_dir: Path | None = None) -> tuple[Path, ...]:
    """The ``.env`` files read, lowest precedence first: the config's folder, then the cwd."""
    return tuple(folder / ".env" for folder in (config_dir, Path.cwd()) if folder is not None)


def credential_dotenv_files(
    config_dir: Path | None = None,
    working_dir: Path | None = None,
    state_dir: Path | None = None,
) -> tuple[Path, ...]:
    """The ``.env`` files credentials are read from, lowest precedence first: the config's
    folder, the working directory (of the CLI that loaded the config), the state dir. The
    process environment wins over all of them."""
    folders = (config_dir, working_dir, state_dir)
    return tuple(dict.fromkeys(folder / ".env" for folder in folders if folder is not None))


class Credentials(CredentialVars, BaseSettings):
    """Venue credentials from this process's environment over ``.env``, on their own."""

    model_config = _SETTINGS

    @classmethod
    def read(cls, config_dir: Path | None = None) -> Self:
        return cls(_env_file=dotenv_files(config_dir))  # type: ignore[call-arg]

    @classmethod
    def read_files(cls, files: tuple[Path, ...]) -> Self:
        return cls(_env_file=files)  # type: ignore[call-arg]


@dataclass(frozen=True)
class NodeCredentials:
    """The credentials this process found on its node, and where (paths and variable names,
    never values: safe to show in status)."""

    config: CredentialsConfig
    sources: tuple[str, ...]

    @property
    def fields(self) -> list[str]:
        return sorted(name for name, value in self.config if value is not None)

    def summary(self) -> dict[str, list[str]]:
        return {"set": self.fields, "from": list(self.sources)}


def node_credentials(cfg: TradeplaneConfig) -> NodeCredentials:
    """The venue credentials of ``cfg``'s deployment as this node has them: the process
    environment over the state dir's ``.env``, over the ``.env`` in the working directory the
    config was loaded from, over the one beside the config file (each read where present on
    this node). Called by the actors that need them (the broker, the journal, which masks
    them) instead of receiving them as arguments."""
    config_dir = cfg.source_path.parent if cfg.source_path is not None else None
    files = credential_dotenv_files(
        config_dir, cfg.loaded_from_dir, cfg.deployment.resolved_state_dir()
    )
    present = tuple(f for f in files if f.is_file())
    creds = Credentials.read_files(present)
    in_environment = any(os.environ.get(var) for var in CREDENTIAL_ENV.values())
    sources = tuple(str(f) for f in present) + (("environment",) if in_environment else ())
    return NodeCredentials(creds.config(), sources)


def without_credentials(cfg: TradeplaneConfig) -> TradeplaneConfig:
    """``cfg`` as any actor receives it: no credentials (strategy code included)."""
    from tradeplane.config.models import CredentialsConfig  # models imports config.env only

    venue = cfg.venue.model_copy(update={"credentials": CredentialsConfig()})
    return cfg.model_copy(update={"venue": venue})


def with_node_credentials(cfg: TradeplaneConfig) -> tuple[TradeplaneConfig, NodeCredentials]:
    """``cfg`` with ``venue.credentials`` as this node has them (see ``node_credentials``)."""
    found = node_credentials(cfg)
    venue = cfg.venue.model_copy(update={"credentials": found.config})
    return cfg.model_copy(update={"venue": venue}), found


class Overrides(OverrideVars, BaseSettings):
    """The override variables from this process's environment over ``.env``."""

    model_config = _SETTINGS

    @classmethod
    def read(cls, config_dir: Path | None = None) -> Self:
        return cls(_env_file=dotenv_files(config_dir))  # type: ignore[call-arg]
