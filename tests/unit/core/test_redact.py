"""Redactor: secrets masked in text, nested data and log records; free when none is known."""

from __future__ import annotations

import io
import json
import logging
import pickle
from collections.abc import Iterator
from typing import NamedTuple
from urllib.parse import quote

import pytest

from tradeplane.core import redact as redact_module
from tradeplane.core.redact import (
    MASK,
    REDACTOR,
    RedactingFilter,
    Redactor,
    install_log_redaction,
    register_secrets,
)

SECRET = "s3cr3t-Value-42"


@pytest.fixture
def process_redactor() -> Iterator[None]:
    """Leave the process-wide redactor and the logging setup as they were."""
    yield
    REDACTOR.clear()
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        if isinstance(logger, logging.Logger):
            for target in [logger, *logger.handlers]:
                for f in [f for f in target.filters if isinstance(f, RedactingFilter)]:
                    target.removeFilter(f)


def test_each_registered_value_is_replaced_with_the_mask() -> None:
    r = Redactor([SECRET, "another-one"])
    assert r.redact(f"key={SECRET}; other=another-one; {SECRET}") == "key=***; other=***; ***"


def test_values_shorter_than_four_characters_are_ignored() -> None:
    r = Redactor(["abc", "", None])  # type: ignore[list-item]
    assert not r.active and len(r) == 0
    assert r.redact("abc abcd") == "abc abcd"


def test_with_nothing_registered_input_comes_back_as_the_same_object() -> None:
    r = Redactor()
    data = {"a": ["x", {"b": "y"}]}
    assert not r.active
    assert r.redact_obj(data) is data
    text = "unchanged text"
    assert r.redact(text) is text


def test_a_secret_containing_another_is_masked_whole() -> None:
    r = Redactor(["abcd", "abcdefgh"])
    assert r.redact("abcdefgh abcd") == f"{MASK} {MASK}"


def test_registering_again_counts_only_new_values() -> None:
    r = Redactor()
    assert r.register([SECRET, SECRET]) == 1
    assert r.register([SECRET]) == 0
    assert r.register(["other-secret"]) == 1 and len(r) == 2


def test_json_escaped_and_url_quoted_forms_are_masked_too() -> None:
    secret = 'pä"ss/wörd'
    r = Redactor([secret])
    assert secret not in r.redact(json.dumps({"k": secret}))
    assert json.dumps(secret)[1:-1] not in r.redact(json.dumps({"k": secret}))
    assert r.redact(f"https://x/?token={quote(secret, safe='')}") == "https://x/?token=***"


class Pair(NamedTuple):
    left: str
    right: str


def test_redact_obj_walks_dicts_lists_and_tuples_and_keeps_untouched_parts() -> None:
    r = Redactor([SECRET])
    clean = {"n": 1, "list": ["a", "b"]}
    data = {
        "clean": clean,
        "nested": [{"token": f"Bearer {SECRET}"}, (SECRET, 3)],
        SECRET: "as a key",
        "pair": Pair(SECRET, "ok"),
        "number": 42,
    }
    out = r.redact_obj(data)
    assert out == {
        "clean": clean,
        "nested": [{"token": "Bearer ***"}, ("***", 3)],
        "***": "as a key",
        "pair": Pair("***", "ok"),
        "number": 42,
    }
    assert out["clean"] is clean
    assert isinstance(out["pair"], Pair)
    assert SECRET not in repr(out)
    assert data["nested"][0]["token"] == f"Bearer {SECRET}"  # the input is not modified


def _record(msg: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("t", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_log_filter_masks_message_and_arguments() -> None:
    f = RedactingFilter(Redactor([SECRET]))
    record = _record("login with %s as %r", SECRET, {"key": SECRET})
    assert f.filter(record)
    assert record.getMessage() == "login with *** as {'key': '***'}"


def test_log_filter_masks_exception_text_and_leaves_clean_records_alone() -> None:
    f = RedactingFilter(Redactor([SECRET]))
    try:
        raise ValueError(f"rejected key {SECRET}")
    except ValueError as exc:
        leaky = _record("failed", exc=exc)
        clean = _record("failed %s", "plainly", exc=exc.__class__("nothing here"))
    f.filter(leaky)
    f.filter(clean)
    text = logging.Formatter().format(leaky)
    assert "rejected key ***" in text and SECRET not in text
    assert "Traceback" in text
    assert clean.exc_info is not None and clean.args == ("plainly",)


def test_installed_log_redaction_covers_records_of_every_child_logger(
    process_redactor: None,
) -> None:
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    try:
        register_secrets([SECRET])
        install_log_redaction()
        install_log_redaction()  # idempotent
        assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1
        logging.getLogger("tradeplane.some.child").error("key is %s", SECRET)
    finally:
        root.removeHandler(handler)
    assert stream.getvalue() == "key is ***\n"


def test_the_process_redactor_is_shared_and_registers_through_the_helper(
    process_redactor: None,
) -> None:
    assert register_secrets([SECRET, "ab"]) == 1
    assert redact_module.redact(f"x{SECRET}x") == "x***x"
    assert REDACTOR.redact_obj([SECRET]) == [MASK]


def test_the_process_redactor_pickles_as_a_reference_and_never_ships_its_secrets(
    process_redactor: None,
) -> None:
    from ray import cloudpickle

    register_secrets([SECRET])

    def uses_it(text: str) -> str:  # pickled by value, like an actor method under Ray
        return REDACTOR.redact(text)

    payload = cloudpickle.dumps(uses_it)
    assert SECRET.encode() not in payload
    assert pickle.loads(pickle.dumps(REDACTOR)) is REDACTOR
    assert cloudpickle.loads(payload)(SECRET) == MASK


def test_a_private_redactor_refuses_to_be_pickled() -> None:
    with pytest.raises(TypeError, match="not pickled"):
        pickle.dumps(Redactor([SECRET]))
