"""The environment and ``.env`` sources of a deployment's variables, on pydantic-settings: the
process environment over ``.env`` files (the config's folder, then the working directory, the
later winning). Variable names are case-sensitive; an empty one is unset.

``Credentials`` loads on its own, so the process that talks to the venue can read its
credentials from its own node's environment (and ``.env``) rather than receive them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic_settings import BaseSettings, SettingsConfigDict

from tradeplane.config.env import CredentialVars, OverrideVars

_SETTINGS = SettingsConfigDict(
    extra="ignore", frozen=True, case_sensitive=True, env_ignore_empty=True
)


def dotenv_files(config_dir: Path | None = None) -> tuple[Path, ...]:
    """The ``.env`` files read, lowest precedence first: the config's folder, then the cwd."""
    return tuple(folder / ".env" for folder in (config_dir, Path.cwd()) if folder is not None)


class Credentials(CredentialVars, BaseSettings):
    """Venue credentials from this process's environment over ``.env``, on their own."""

    model_config = _SETTINGS

    @classmethod
    def read(cls, config_dir: Path | None = None) -> Self:
        return cls(_env_file=dotenv_files(config_dir))  # type: ignore[call-arg]


class Overrides(OverrideVars, BaseSettings):
    """The override variables from this process's environment over ``.env``."""

    model_config = _SETTINGS

    @classmethod
    def read(cls, config_dir: Path | None = None) -> Self:
        return cls(_env_file=dotenv_files(config_dir))  # type: ignore[call-arg]
