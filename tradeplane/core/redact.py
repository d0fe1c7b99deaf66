"""Secret redaction for text, nested data and log records (pure: no IO beyond ``logging``).

A process registers the secret values it holds (``register_secrets``); from then on whatever it
journals, logs or prints passes through ``REDACTOR``, which replaces each value with ``***``.
With nothing registered every call returns its input unchanged at once (zero cost).

Values are also matched in the forms they take once JSON-encoded or URL-quoted, so a secret
inside a serialised payload or a query string is found too. Values shorter than
``MIN_SECRET_LEN`` are ignored: masking every ``"1"`` or ``"ab"`` would mangle ordinary text and
protects nothing.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import traceback
from collections.abc import Iterable
from typing import Any, TypeVar
from urllib.parse import quote

MASK = "***"
MIN_SECRET_LEN = 4

T = TypeVar("T")


def _variants(value: str) -> set[str]:
    return {
        value,
        json.dumps(value)[1:-1],  # ASCII-escaped, as json.dumps writes it by default
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
    }


class Redactor:
    """Replaces registered secret values with ``MASK`` in strings and nested data."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self.register(values)

    @property
    def active(self) -> bool:
        """True once at least one value is registered."""
        return self._pattern is not None

    def __len__(self) -> int:
        return len(self._values)

    def register(self, values: Iterable[str | None]) -> int:
        """Add values (``None``, empty and short ones are ignored); returns how many are new."""
        wanted = {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LEN}
        with self._lock:
            fresh = wanted - self._values
            if not fresh:
                return 0
            values_now = self._values | fresh
            forms = {f for v in values_now for f in _variants(v) if len(f) >= MIN_SECRET_LEN}
            # Longest first, so a secret that contains another is masked whole.
            alternation = "|".join(re.escape(f) for f in sorted(forms, key=lambda f: (-len(f), f)))
            # Published together: a reader sees the old or the new pattern, both usable.
            self._pattern = re.compile(alternation)
            self._values = values_now
        return len(fresh)

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        # Never ship secrets: the process-wide redactor pickles as a reference to the receiving
        # process's own (Ray pickles actor methods by value, with the globals they use); any
        # other redactor refuses.
        if self is REDACTOR:
            return (_process_redactor, ())
        raise TypeError("a Redactor holds secret values and is not pickled")

    def clear(self) -> None:
        with self._lock:
            self._values = frozenset()
            self._pattern = None

    def redact(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def redact_obj(self, obj: T) -> T:
        """``obj`` with every string in it (dict keys and values, list and tuple items)
        redacted; the very same object when nothing needed masking."""
        if self._pattern is None:
            return obj
        return self._walk(obj)

    def _walk(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            out = {self._walk(k): self._walk(v) for k, v in obj.items()}
            changed = any(
                k2 is not k or v2 is not v
                for (k, v), (k2, v2) in zip(obj.items(), out.items(), strict=False)
            )
            return out if changed or len(out) != len(obj) else obj
        if isinstance(obj, list | tuple):
            items = [self._walk(v) for v in obj]
            if all(a is b for a, b in zip(items, obj, strict=True)):
                return obj
            if isinstance(obj, list):
                return items
            if hasattr(obj, "_fields"):  # a namedtuple
                return type(obj)(*items)
            return tuple(items)
        return obj


REDACTOR = Redactor()
"""The process-wide redactor: what the journal, the logs and the CLI's output pass through."""


def _process_redactor() -> Redactor:
    return REDACTOR


def register_secrets(values: Iterable[str | None]) -> int:
    """Register secret values with the process-wide ``REDACTOR``; returns how many are new."""
    return REDACTOR.register(values)


def redact(text: str) -> str:
    return REDACTOR.redact(text)


class RedactingFilter(logging.Filter):
    """Masks secrets in a record's message, arguments, exception and stack text.

    Only a record that actually contains a secret is changed: its message is formatted once and
    its arguments dropped; its exception is formatted into ``exc_text`` (which every standard
    formatter prints) and ``exc_info`` cleared, so no handler formats the raw exception again.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or REDACTOR

    def filter(self, record: logging.LogRecord) -> bool:
        r = self.redactor
        if not r.active:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            message = None
        if message is not None:
            masked = r.redact(message)
            if masked != message:
                record.msg, record.args = masked, ()
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            masked = r.redact(text)
            if masked != text:
                record.exc_text, record.exc_info = masked, None
        elif record.exc_text:
            record.exc_text = r.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = r.redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


def _add_filter(target: logging.Filterer) -> None:
    if not any(isinstance(f, RedactingFilter) for f in target.filters):
        target.addFilter(_FILTER)


def install_log_redaction() -> None:
    """Redact every record the root logger's handlers (and other existing handlers) emit.

    Idempotent. A filter on a logger only sees records logged on that very logger, so the filter
    also goes on the handlers, which see the records propagated from every child logger. Call it
    again after adding handlers.
    """
    root = logging.getLogger()
    _add_filter(root)
    handlers = list(root.handlers)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            handlers.extend(logger.handlers)
    for handler in handlers:
        _add_filter(handler)
