"""Deliberately wrong remote calls: ``tests/unit/protocol/test_typed_calls.py`` runs mypy on this
file and expects each marked line to be rejected. Never imported, never run."""

from __future__ import annotations

from tradeplane.actors.common import Outbox, Peers
from tradeplane.core.model import Envelope
from tradeplane.protocol.api import BrokerApi, JournalApi, RiskApi
from tradeplane.protocol.roles import ROLE_BROKER, ROLE_JOURNAL, ROLE_RISK


async def wrong(outbox: Outbox, peers: Peers, env: Envelope) -> None:
    outbox.send_nowait(ROLE_RISK, RiskApi.on_intent, env)  # expect: no-such-method
    outbox.send_nowait(ROLE_RISK, RiskApi.on_intents)  # expect: missing-argument
    outbox.send_nowait(ROLE_RISK, RiskApi.on_intents, "not an envelope")  # expect: wrong-type
    outbox.send_nowait(ROLE_JOURNAL, BrokerApi.drain, 5.0)  # expect: wrong-role
    broker = peers.remote(ROLE_BROKER)
    assert broker is not None
    accepted: str = await broker.call(BrokerApi.submit, env)  # expect: wrong-type
    del accepted
    await outbox.send(ROLE_JOURNAL, JournalApi.append, [], [], 3)  # expect: too-many-arguments


async def right(outbox: Outbox, peers: Peers, env: Envelope) -> None:
    outbox.send_nowait(ROLE_RISK, RiskApi.on_intents, env)
    await outbox.send(ROLE_JOURNAL, JournalApi.append, [], [])
    journal = peers.remote(ROLE_JOURNAL)
    assert journal is not None
    seqs: list[int] = await journal.call(JournalApi.append, [])
    del seqs
