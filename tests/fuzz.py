"""Hostile input at scale: the shared profile and mutation vocabulary of the fuzz families
(config files, OKX/Binance messages, TWS objects, CLI arguments).

Profiles, chosen by ``TRADEPLANE_FUZZ_PROFILE``:

- ``ci`` (default): 1,000 generated cases per family test, derandomized (the same cases on
  every run, so CI is reproducible and a failure reproduces by rerunning the test).
- ``soak``: 10,000 per family test, derandomized too;
  ``TRADEPLANE_FUZZ_PROFILE=soak .venv/bin/python -m pytest tests/unit -k fuzz -p no:xdist``.
  ``TRADEPLANE_FUZZ_CASES=N`` overrides the count of either.

Each family test runs its hypothesis test inside and then asserts that at least that many
cases ran, so a strategy that silently ran out of cases fails instead of passing small.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

PROFILES = {"ci": 1_000, "soak": 10_000}
PROFILE = os.environ.get("TRADEPLANE_FUZZ_PROFILE", "ci")
if PROFILE not in PROFILES:
    raise ValueError(f"TRADEPLANE_FUZZ_PROFILE={PROFILE!r}: one of {sorted(PROFILES)}")
CASES = int(os.environ.get("TRADEPLANE_FUZZ_CASES", PROFILES[PROFILE]))


def fuzz_settings(cases: int = CASES) -> settings:
    return settings(
        max_examples=cases,
        derandomize=True,  # the same cases on every run
        database=None,  # nothing written beside the repo, nothing replayed from a past run
        deadline=None,  # no wall-clock judgement on a shared machine
        # Generate and check only: a failure is reported with the case hypothesis found
        # (shrinking 10,000 hostile cases would cost more than it tells).
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


def run_cases(test: Callable[[], None], counter: list[int], cases: int = CASES) -> None:
    """Run a ``@given`` test and check that it saw ``cases`` cases (``counter[0]``)."""
    counter[0] = 0
    test()
    assert counter[0] >= cases, f"only {counter[0]} of {cases} cases ran"


# -- values a venue or an operator could send where something else belongs

HUGE_TEXT = "x" * 100_000
HOSTILE_SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    2**63,
    -(2**63) - 1,
    10**400,
    0.0,
    -0.0,
    -1.5,
    1e308,
    1.7976931348623157e308,  # TWS's "unset" double
    2**31 - 1,  # TWS's "unset" integer
    math.inf,
    -math.inf,
    math.nan,
    "",
    " ",
    "nan",
    "NaN",
    "inf",
    "-Infinity",
    "1e999",
    "-1",
    "0",
    "0x10",
    "1_000",
    "\uff11\uff12\uff13",  # full-width digits: str.isdigit() says yes, int() may too
    "\x00",
    "\ud800",  # a lone surrogate: not encodable as UTF-8
    "💥" * 3,
    "'; DROP TABLE orders; --",
    "${HOME}",
    HUGE_TEXT,
]

hostile_scalar = st.sampled_from(HOSTILE_SCALARS)
hostile_value: st.SearchStrategy[Any] = st.one_of(
    hostile_scalar,
    st.text(max_size=40),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(hostile_scalar, max_size=3),
    st.dictionaries(st.text(max_size=5), hostile_scalar, max_size=3),
)


# -- mutations of a good document (JSON-like: dicts and lists)

Path = tuple[Any, ...]


def paths(doc: Any, prefix: Path = ()) -> list[Path]:
    """Every path to a value inside ``doc`` (dict keys, list indexes)."""
    out: list[Path] = []
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    )
    for key, value in items:
        out.append((*prefix, key))
        out.extend(paths(value, (*prefix, key)))
    return out


def at(doc: Any, path: Path) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def mutate(
    data: st.DataObject,
    doc: Any,
    values: st.SearchStrategy[Any] | None = None,
    keys: st.SearchStrategy[str] | None = None,
) -> tuple[Any, list[tuple[str, Path]]]:
    """``doc`` with 0..3 mutations (a value set to one of ``values``, deleted, or an unknown key
    from ``keys`` added); the mutations made, as (kind, path)."""
    values = hostile_value if values is None else values
    keys = st.text(max_size=8).map(lambda k: "x-" + k) if keys is None else keys
    doc = copy.deepcopy(doc)
    made: list[tuple[str, Path]] = []
    for _ in range(data.draw(st.integers(0, 3), label="mutations")):
        where = paths(doc)
        if not where:
            break
        path = data.draw(st.sampled_from(where), label="path")
        parent = at(doc, path[:-1])
        kind = data.draw(st.sampled_from(["set", "set", "delete", "add"]), label="kind")
        if kind == "set":
            parent[path[-1]] = data.draw(values, label="value")
        elif kind == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            key = data.draw(keys, label="key")
            parent[key] = data.draw(values, label="added")
            path = (*path[:-1], key)  # where the unknown key now is
        else:
            parent.append(data.draw(values, label="item"))
            path = (*path[:-1], len(parent) - 1)
        made.append((kind, path))
    return doc, made
