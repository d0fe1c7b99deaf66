"""The console entry point leaves a cluster its command attached to before the interpreter exits
(Ray's exit hook would first sleep half a second for log lines the CLI never shows), and leaves
alone a connection its caller had already made. A stand-in ``ray`` module: no Ray here."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

from tradeplane.cli import main as cli_main


class FakeRay(SimpleNamespace):
    def __init__(self, *, initialized: bool) -> None:
        super().__init__(initialized=initialized, shutdowns=0)

    def is_initialized(self) -> bool:
        return bool(self.initialized)

    def shutdown(self) -> None:
        self.shutdowns += 1
        self.initialized = False


def _command_that_attaches(ray: FakeRay, code: int) -> None:
    ray.initialized = True
    raise SystemExit(code)


@pytest.mark.parametrize("code", [0, 1])
def test_command_attached_then_detached_before_exit_with_its_exit_code(
    monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    ray = FakeRay(initialized=False)
    monkeypatch.setitem(sys.modules, "ray", ray)
    monkeypatch.setattr(cli_main, "app", lambda: _command_that_attaches(ray, code))
    with pytest.raises(SystemExit) as exited:
        cli_main.main()
    assert exited.value.code == code
    assert ray.shutdowns == 1 and not ray.initialized


def test_caller_already_attached_then_its_connection_left_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ray = FakeRay(initialized=True)
    monkeypatch.setitem(sys.modules, "ray", ray)
    monkeypatch.setattr(cli_main, "app", lambda: _command_that_attaches(ray, 0))
    with pytest.raises(SystemExit):
        cli_main.main()
    assert ray.shutdowns == 0 and ray.initialized


def test_command_that_never_imported_ray_then_nothing_to_leave(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    monkeypatch.setattr(cli_main, "app", lambda: None)
    cli_main.main()
    assert "ray" not in sys.modules
