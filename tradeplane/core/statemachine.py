"""A transition table that raises on any edge it does not list."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from tradeplane.core.errors import IllegalTransition

S = TypeVar("S", bound=StrEnum)


class TransitionTable(Generic[S]):
    def __init__(self, name: str, edges: Mapping[S, frozenset[S]]) -> None:
        self.name = name
        self._edges = dict(edges)

    def allowed(self, current: S, requested: S) -> bool:
        return requested in self._edges.get(current, frozenset())

    def check(self, current: S, requested: S) -> S:
        if not self.allowed(current, requested):
            raise IllegalTransition(self.name, current.value, requested.value)
        return requested

    def is_terminal(self, state: S) -> bool:
        return not self._edges.get(state)
