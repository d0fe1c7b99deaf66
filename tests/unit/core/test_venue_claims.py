"""Two deployments on one cluster never share a venue API connection (IB client ids)."""

from __future__ import annotations

from tradeplane.core.venue_claims import FRESH_CLAIM_S, VenueClaim, clashes, ib_connections


def claim(name: str, host: str, port: int, client_id: int, *, ib_feed: bool = True) -> VenueClaim:
    return VenueClaim(name, tuple(ib_connections(host, port, client_id, ib_feed=ib_feed)), 100.0)


def test_the_same_client_id_on_the_same_tws_clashes_naming_the_other_deployment() -> None:
    (problem,) = clashes(
        claim("b", "127.0.0.1", 7497, 1, ib_feed=False), [claim("a", "127.0.0.1", 7497, 1)]
    )
    assert "IB 127.0.0.1:7497 client id 1" in problem
    assert "running deployment 'a' (its broker)" in problem


def test_the_feeds_id_is_the_brokers_plus_one_and_clashes_too() -> None:
    (problem,) = clashes(claim("b", "localhost", 7497, 2), [claim("a", "127.0.0.1", 7497, 1)])
    assert "client id 2 (for this deployment's broker)" in problem
    assert "'a' (its feed)" in problem


def test_other_ids_ports_or_hosts_do_not_clash() -> None:
    others = [claim("a", "127.0.0.1", 7497, 1)]
    assert clashes(claim("b", "127.0.0.1", 7497, 3), others) == []
    assert clashes(claim("b", "127.0.0.1", 4002, 1), others) == []
    assert clashes(claim("b", "10.0.0.7", 7497, 1), others) == []


def test_a_deployments_own_earlier_claim_is_no_clash() -> None:
    assert clashes(claim("a", "127.0.0.1", 7497, 1), [claim("a", "127.0.0.1", 7497, 1)]) == []


def test_a_claim_holds_while_its_deployment_runs_or_is_being_deployed() -> None:
    c = claim("a", "127.0.0.1", 7497, 1)
    assert c.counts(running=True, now=c.ts + 10 * FRESH_CLAIM_S)
    assert c.counts(running=False, now=c.ts + 1.0)
    assert not c.counts(running=False, now=c.ts + FRESH_CLAIM_S + 1.0)


def test_a_claim_survives_its_round_trip_through_the_store() -> None:
    c = claim("a", "127.0.0.1", 7497, 1)
    assert VenueClaim.from_dict(c.to_dict()) == c
