"""Branch points of the supervisor, shell against core, at a commit and in the working tree.

A branch point is an ``if``/``elif``, ``while``, ``for``/``async for``, ``except`` clause, each
extra operand of a boolean operator, a conditional expression, and a ``with suppress(...)``
block (an exception branch written another way). A ``match`` case, as used for dispatching
observations and commands, is not counted; comprehensions' ``if`` neither.
Usage: ``python bench/branches.py [COMMIT]`` (default 8491be0); prints one JSON
line per tree.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHELL = ["actor.py", "recovery.py", "stopping.py", "status.py", "adapter.py"]
# Files added by the refactor of issue 13; absent at the old commit.
SHELL_NEW = ["supervisor.py", "reattach.py", "clock.py"]
CORE = ["core.py"]
CORE_NEW = ["commands.py", "model.py", "derive.py", "halting.py"]


_ONE_BRANCH = (
    ast.If,
    ast.While,
    ast.For,
    ast.AsyncFor,
    ast.IfExp,
    ast.ExceptHandler,
    ast.match_case,
)


def branches(source: str) -> int:
    count = 0
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, _ONE_BRANCH):
            count += 1
        elif isinstance(node, ast.BoolOp):
            count += len(node.values) - 1
        elif isinstance(node, ast.With | ast.AsyncWith):
            count += sum(_is_suppress(item.context_expr) for item in node.items)
    return count


def _is_suppress(expr: ast.expr) -> bool:
    if not isinstance(expr, ast.Call):
        return False
    func = expr.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    return name == "suppress"


def read(path: str, commit: str | None) -> str | None:
    full = f"tradeplane/supervisor/{path}"
    if commit is None:
        file = ROOT / full
        return file.read_text() if file.exists() else None
    out = subprocess.run(
        ["git", "show", f"{commit}:{full}"], cwd=ROOT, capture_output=True, text=True
    )
    return out.stdout if out.returncode == 0 else None


def measure(commit: str | None) -> dict[str, object]:
    def total(files: list[str]) -> dict[str, int]:
        found = {f: read(f, commit) for f in files}
        return {f: branches(s) for f, s in found.items() if s is not None}

    shell, core = total(SHELL + SHELL_NEW), total(CORE + CORE_NEW)
    s, c = sum(shell.values()), sum(core.values())
    return {
        "tree": commit or "working tree",
        "shell": s,
        "core": c,
        "shell_share": round(s / (s + c), 3) if s + c else None,
        "files": {"shell": shell, "core": core},
    }


if __name__ == "__main__":
    base = sys.argv[1] if len(sys.argv) > 1 else "8491be0"
    print(json.dumps(measure(base)))
    print(json.dumps(measure(None)))
