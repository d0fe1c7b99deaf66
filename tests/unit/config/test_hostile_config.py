"""Hostile input at scale, deployment config files: the example configs broken by up to three
mutations (a value of the wrong type, NaN, infinity, negative, huge, a bad unit like "10s"; a
key or a whole section deleted; an unknown key added), written out as TOML text (sometimes cut
short or with a garbage line), then loaded the way ``tradeplane up`` loads them.

A clear refusal, as checked here: ``load_config`` returns a config or raises ``ConfigError``
(ours, an ``OperationalError``) and nothing else. Its message says what kind of problem it is
("invalid TOML in <file>" with the line, or "invalid config <file>:" followed by one line per
problem, each "  <dotted field path>: <what is wrong>"); for a file broken by one mutation, the
message names the section the mutation touched. A loaded config is whole: every limit finite.

Profile and case counts: tests/fuzz.py (``TRADEPLANE_FUZZ_PROFILE=soak`` for 10,000 each).
"""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path as FsPath
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import HOSTILE_SCALARS, Path, fuzz_settings, mutate, run_cases
from tradeplane.config.loading import ConfigError, load_config
from tradeplane.config.models import TradeplaneConfig

REPO = FsPath(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "config").glob("*.toml"))
BASES = {p.name: tomllib.loads(p.read_text(encoding="utf-8")) for p in EXAMPLES}
BAD_UNITS = ["10s", "5 min", "1h", "2 %", "50000 USD", "1e3ms", "-0", "ten"]
CONFIG_VALUES = st.one_of(
    st.sampled_from([v for v in HOSTILE_SCALARS if v is not None] + BAD_UNITS),
    st.integers(),
    st.floats(),
    st.lists(st.sampled_from(["AAA", "", 1, 2.5, True]), max_size=3),
    st.dictionaries(st.sampled_from(["x", "kind", "name", "seed"]), st.integers(), max_size=2),
)
CONFIG_KEYS = st.one_of(
    st.sampled_from(["max_order_valu", "symbol", "kindd", "state-dir", "api_key", ""]),
    st.text(max_size=6).map(lambda k: "x-" + k),
)
HEADINGS = ("invalid TOML in ", "invalid config ", "config file not found")


# -- a small TOML writer (tomllib only reads) -----------------------------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string (a lone surrogate makes bad TOML: fine)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(i for i, (_, v) in zip(items, value.items(), strict=True)
                               if v is not None) + "}"  # fmt: skip
    return json.dumps(str(value))


def toml_text(doc: dict[str, Any], prefix: str = "", *, inline: bool = False) -> str:
    """``doc`` as TOML; ``inline``: its nested tables written inline (an array's item)."""
    lines: list[str] = []
    tables: list[tuple[str, Any]] = []
    for key, value in doc.items():
        if value is None:
            continue  # TOML has no null: the key is left out
        name = json.dumps(str(key))
        if isinstance(value, dict) and not inline:
            tables.append((f"{prefix}{name}", value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.extend((f"[{prefix}{name}]", v) for v in value)
        else:
            lines.append(f"{name} = {toml_value(value)}")
    for heading, table in tables:
        array = heading.startswith("[")
        lines.append(f"\n[{heading}]")
        inner = toml_text(table, f"{heading}.", inline=array)
        lines.append(inner)
    return "\n".join(lines)


# -- the family -----------------------------------------------------------------------------


def shown(key: object) -> str:
    """A key as an error message shows it: control characters and line breaks escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in str(key))


def words_for(path: Path) -> set[str]:
    """What a refusal of a file broken at ``path`` must mention: the section (or the
    strategy list), or the field itself."""
    return {shown(path[0])} | ({shown(path[-1])} if isinstance(path[-1], str) else set())


def assert_clear(exc: ConfigError, made: list[tuple[str, Path]], raw_broken: bool) -> None:
    text = str(exc)
    first, *rest = text.splitlines()
    assert first.startswith(HEADINGS), text
    if first.startswith("invalid config "):
        assert rest, text
        for line in rest:
            loc, sep, why = line.strip().partition(": ")
            assert loc and sep and why.strip(), f"not '<field>: <why>': {line!r}"
        if len(made) == 1 and not raw_broken:
            words = words_for(made[0][1])
            assert any(w in text for w in words), (made, text)


def assert_whole(cfg: TradeplaneConfig) -> None:
    for name, value in cfg.risk.model_dump().items():
        if isinstance(value, float):
            assert math.isfinite(value), f"risk.{name} = {value}"
    assert cfg.deployment.name and cfg.strategies is not None


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> FsPath:
    root = tmp_path_factory.mktemp("hostile-config")
    (root / "examples").symlink_to(REPO / "examples")
    (root / "config").mkdir()
    return root / "config"


def test_fuzz_config_files_then_each_loaded_whole_or_refused_naming_the_field(
    config_dir: FsPath,
) -> None:
    counter = [0]
    path = config_dir / "case.toml"

    @fuzz_settings()
    @given(st.data(), st.sampled_from(sorted(BASES)))
    def case(data: st.DataObject, base: str) -> None:
        counter[0] += 1
        doc, made = mutate(data, BASES[base], CONFIG_VALUES, CONFIG_KEYS)
        if data.draw(st.booleans(), label="fresh state dir"):
            doc.setdefault("deployment", {})
            if isinstance(doc["deployment"], dict):
                doc["deployment"]["state_dir"] = str(config_dir / "state")
        text = toml_text(doc)
        raw = data.draw(st.integers(0, 19), label="raw damage")
        if raw == 0:
            text = text[: data.draw(st.integers(0, len(text)), label="cut")]
        elif raw == 1:
            lines = text.splitlines()
            at = data.draw(st.integers(0, len(lines)), label="line")
            junk = data.draw(st.sampled_from(["[risk", "= 1", "a = ", "[[x]]]", "\x00", "é"]))
            text = "\n".join([*lines[:at], junk, *lines[at:]])
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            cfg = load_config(path, env={})
        except ConfigError as exc:
            assert_clear(exc, made, raw_broken=raw in (0, 1))
            return
        assert_whole(cfg)

    run_cases(case, counter)


def test_the_toml_writer_round_trips_every_example() -> None:
    for name, doc in BASES.items():
        assert tomllib.loads(toml_text(doc)) == doc, name


def test_unknown_key_with_a_line_break_then_the_error_stays_one_line_per_problem(
    config_dir: FsPath,
) -> None:
    # Found by the fuzzing: a key holding U+0085 (a line break to str.splitlines) split the
    # message, so its second half read as a line of its own.
    path = config_dir / "nel.toml"
    doc = dict(BASES["demo.toml"])
    doc["journal"] = {**doc["journal"], "x-\x85risk.max_order_value: forged\n": 1}
    path.write_text(toml_text(doc), encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path, env={})
    _first, *rest = str(raised.value).splitlines()
    assert rest == [
        "  journal.x-\\x85risk.max_order_value: forged\\n: Extra inputs are not permitted"
    ]
