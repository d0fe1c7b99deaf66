"""The settings every config model shares, apart from ``models`` so that the settings of one
part (``config.faults``, ``config.venues``) can use them without an import cycle."""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict


class FrozenModel(BaseModel):
    """Frozen, unknown keys refused, a field's docstring is its description, no NaN or inf.
    Schemas build on first use: a restarted actor unpickles its config and never validates it,
    so building every model's schema at import would only slow each restart (about 0.1 s).

    Field docstrings are read here, from one parse of each module's source, rather than by
    pydantic's ``use_attribute_docstrings``: that finds each class's source through the
    interpreter's frames and ``inspect.getmodule``, which resolves the path of every module
    loaded (hundreds in a Ray worker), about 40 ms of each actor's start-up."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
        defer_build=True,
    )

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        docs = attribute_docstrings(cls)
        for name, info in cls.__pydantic_fields__.items():
            if info.description is None and name in docs:
                info.description = docs[name]


def attribute_docstrings(cls: type) -> dict[str, str]:
    """``cls``'s annotated attributes and the string literal right below each (its docstring),
    as pydantic's ``use_attribute_docstrings`` reads them."""
    found = _module_classes(cls.__module__).get(cls.__qualname__)
    if found is None:  # not at a module's top level (a class made in a function): its source
        try:
            source = inspect.cleandoc("\n" + inspect.getsource(cls))
            found = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef))
        except (OSError, TypeError, SyntaxError, StopIteration):
            return {}
    return _docstrings(found)


@functools.cache
def _module_classes(module: str) -> dict[str, ast.ClassDef]:
    """Every class statement in ``module``'s source by qualified name (classes nested in
    classes included); {} when the source cannot be read."""
    path = getattr(sys.modules.get(module), "__file__", None)
    if not path:
        return {}
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return {}
    out: dict[str, ast.ClassDef] = {}
    pending: list[tuple[str, list[ast.stmt]]] = [("", tree.body)]
    while pending:
        prefix, body = pending.pop()
        for node in body:
            if isinstance(node, ast.ClassDef):
                out[prefix + node.name] = node
                pending.append((f"{prefix}{node.name}.", node.body))
    return out


def _docstrings(node: ast.ClassDef) -> dict[str, str]:
    out: dict[str, str] = {}
    for above, stmt in itertools.pairwise(node.body):
        if (
            isinstance(above, ast.AnnAssign)
            and isinstance(above.target, ast.Name)
            and isinstance(stmt, ast.Expr)
            and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str)
        ):
            out[above.target.id] = inspect.cleandoc(stmt.value.value)
    return out
