"""The CLI's output streams: everything the ``tradeplane`` command prints passes the redactor.

``console``/``err`` are rich consoles and ``stdout``/``stderr`` plain text streams; all of them
write through ``REDACTOR``, which knows the credentials set in this process's environment (and
``.env``) from import, and a loaded config's once ``protect(cfg)`` is called. Strings are masked
before rich lays them out (so wrapping or truncation cannot split a secret) and the rendered text
again on its way out (for whatever reached rich as a pre-built ``Text``).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import IO, Any, Literal, cast

from rich.console import Console
from rich.text import Text

from tradeplane.config.loading import (
    ConfigError,
    credential_values,
    environment,
    read_dotenv,
    secret_values,
)
from tradeplane.core.redact import REDACTOR, install_log_redaction, register_secrets


class RedactingStream(io.TextIOBase):
    """Writes to the current ``sys.stdout``/``sys.stderr`` (looked up per write, so test
    runners and rich's ``Live`` redirection still apply) with secrets masked."""

    def __init__(self, which: Literal["stdout", "stderr"]) -> None:
        super().__init__()
        self._which = which

    @property
    def target(self) -> IO[str]:
        stream = getattr(sys, self._which)
        stream = getattr(stream, "rich_proxied_file", stream)  # rich Live's stdout proxy
        if stream is self or stream is None:
            stream = getattr(sys, f"__{self._which}__")
        return cast(IO[str], stream)

    def write(self, s: str) -> int:
        self.target.write(REDACTOR.redact(s))
        return len(s)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        try:
            return self.target.isatty()
        except (AttributeError, ValueError):
            return False

    def fileno(self) -> int:
        return self.target.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", None) or "utf-8"


class RedactingConsole(Console):
    """A rich console that masks secrets in every string it renders and everything it writes."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(REDACTOR.redact(text), **kwargs)


def protect(cfg: Any) -> None:
    """Mask ``cfg``'s secrets in everything this process prints or logs from now on."""
    if register_secrets(secret_values(cfg)):
        install_log_redaction()


def protect_state_dir(state_dir: Path) -> None:
    """Mask the credentials in ``state_dir``'s ``.env`` too (where the state node's actors read
    them) in everything this process prints from now on."""
    try:
        env = read_dotenv(state_dir / ".env")
    except (ConfigError, OSError):  # malformed or unreadable: reported when a config is loaded
        return
    if register_secrets(credential_values(env).values()):
        install_log_redaction()


def _protect_environment() -> None:
    try:
        env = environment()
    except ConfigError:  # a malformed .env: reported when a config is loaded
        return
    if register_secrets(credential_values(env).values()):
        install_log_redaction()


stdout = RedactingStream("stdout")
stderr = RedactingStream("stderr")
console = RedactingConsole(file=cast(IO[str], stdout))
err = RedactingConsole(file=cast(IO[str], stderr), stderr=True)

_protect_environment()
