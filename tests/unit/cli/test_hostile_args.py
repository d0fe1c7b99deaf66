"""Hostile input at scale, CLI arguments: generated command lines for every command, parsed and
validated only. Nothing is executed: each command line goes to the command's parser
(``make_context``: options, arguments, type conversion, required checks) and never to the
command's function, so nothing connects, deploys or writes state; the time options go to the
validators the commands call first.

A clear refusal, as checked here: the parser accepts the line or raises a ``UsageError`` (bad
value, no such option, missing argument, extra argument) whose message names the parameter or
the token at fault; ``--help`` exits 0. A time validator returns a UTC time or refuses with a
message naming the option (a non-zero ``typer.Exit``; ``BadParameter`` for ``bars fetch``).
Nothing else escapes (no OverflowError, TypeError, ...).

Profile and case counts: tests/fuzz.py (``TRADEPLANE_FUZZ_PROFILE=soak`` for 10,000 each).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import typer
import typer.main
from hypothesis import given
from hypothesis import strategies as st
from typer._click.exceptions import UsageError

from tests.fuzz import HUGE_TEXT, fuzz_settings, run_cases
from tradeplane.cli import bars_cmd, trace_cmd
from tradeplane.cli.backtest_cmd import parse_time
from tradeplane.cli.main import app


def leaf_commands() -> dict[str, Any]:
    out: dict[str, Any] = {}

    def walk(cmd: Any, prefix: list[str]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs is None:
            out[" ".join(prefix)] = cmd
            return
        for name, sub in subs.items():
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return out


COMMANDS = leaf_commands()
HOSTILE_TOKENS = [
    "", " ", "-", "--", "-1", "0", "nan", "inf", "-inf", "1e999", "1e20", "-5s", "10s",
    "2**64", "18446744073709551617", "\uff10", "\x00", "\n", "💥", "--nope", "-Z", "=", "--=x",
    "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2024-02-30", "2024-05-01",
    "2024-05-01T09:00:00", "yesterday", "../../etc/passwd", "/dev/null", "demo", "sim", "okx",
    "BTC-USDT", "on", "off", "live", "paper", "json", "parquet", HUGE_TEXT[:5000],
]  # fmt: skip


@st.composite
def command_lines(draw: st.DrawFn) -> tuple[str, list[str]]:
    name = draw(st.sampled_from(sorted(COMMANDS)))
    cmd = COMMANDS[name]
    opts = [o for p in cmd.params for o in p.opts if o.startswith("-")]
    token = st.one_of(
        st.sampled_from(HOSTILE_TOKENS),
        st.sampled_from(opts or ["--x"]),
        st.text(max_size=12),
        st.integers().map(str),
        st.floats().map(str),
    )
    argv = draw(st.lists(token, max_size=8))
    return name, [a for a in argv if a != "--help"]


def names_of(cmd: Any) -> set[str]:
    out: set[str] = set()
    for p in cmd.params:
        out.update(p.opts)
        out.add(p.name.upper())
        out.add(p.name)
        if getattr(p, "metavar", None):
            out.add(str(p.metavar))
    return out


def test_fuzz_cli_arguments_then_parsed_or_refused_naming_the_parameter() -> None:
    counter = [0]

    @fuzz_settings()
    @given(command_lines())
    def case(line: tuple[str, list[str]]) -> None:
        counter[0] += 1
        name, argv = line
        cmd = COMMANDS[name]
        try:
            with cmd.make_context(f"tradeplane {name}", list(argv)):
                pass  # parsed and converted; the command's function is never called
        except UsageError as exc:
            message = exc.format_message()
            assert message.strip(), (name, argv)
            named = names_of(cmd) | {a for a in argv if a} | {"unexpected extra argument"}
            named |= {a[:2] for a in argv if a.startswith("-")}  # "-29": the short option -2
            named |= {n.encode("unicode_escape").decode() for n in named}  # shown escaped
            assert any(n in message for n in named), (name, argv, message)
        except typer.Exit as exc:
            assert exc.exit_code == 0, (name, argv)  # only help (no_args_is_help) exits here

    run_cases(case, counter)


TIME_TEXT = st.one_of(
    st.sampled_from(HOSTILE_TOKENS),
    st.floats().map(repr),
    st.integers().map(str),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),
    st.text(max_size=30),
)


def test_fuzz_cli_time_options_then_a_utc_time_or_refused_naming_the_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    counter = [0]

    @fuzz_settings()
    @given(TIME_TEXT, st.sampled_from(["backtest", "trace", "bars"]))
    def case(text: str, which: str) -> None:
        counter[0] += 1
        try:
            if which == "backtest":
                got: Any = parse_time(text, "--from")
                assert isinstance(got, datetime) and got.tzinfo is not None
            elif which == "trace":
                got = trace_cmd._parse_time("--since", text)
                assert isinstance(got, float)
            else:
                got = bars_cmd._time(text, "--from")
                assert isinstance(got, datetime) and got.utcoffset() is not None
        except typer.Exit as exc:
            assert exc.exit_code != 0
            err = capsys.readouterr().err
            assert "--from" in err or "--since" in err, err
        except typer.BadParameter as exc:
            assert exc.param_hint == "--from" and str(exc).strip()

    run_cases(case, counter)


@pytest.mark.parametrize(
    "text", ["1e20", "-1e20", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"]
)
def test_time_option_out_of_range_then_refused_naming_the_option_not_a_traceback(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Found by the fuzzing: these raised OverflowError out of `backtest --from/--to` and
    # `bars fetch --from/--to`.
    with pytest.raises(typer.Exit) as raised:
        parse_time(text, "--from")
    assert raised.value.exit_code != 0
    assert "--from" in capsys.readouterr().err
    with pytest.raises(typer.BadParameter, match="out of range"):
        bars_cmd._time(text, "--to")


def test_time_option_plain_date_then_utc_midnight() -> None:
    assert parse_time("2024-05-01", "--from") == datetime(2024, 5, 1, tzinfo=UTC)
