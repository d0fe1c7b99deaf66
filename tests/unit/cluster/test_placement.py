import pytest

from tradeplane.cluster.placement import (
    HEAD_RESOURCE,
    NodeInfo,
    PlacementError,
    eligible,
    nodes_from_table,
    resolve_node,
)

HEAD = NodeInfo("h" * 56, "10.0.0.1", True, {HEAD_RESOURCE: 1.0, "CPU": 2.0})
STATE = NodeInfo("5" * 56, "10.0.0.2", True, {"tp_state": 1.0}, {"tp-role": "state"})
WORKER = NodeInfo("7" * 56, "10.0.0.3", True, {"tp_strategy": 4.0}, {"zone": "b"})
GONE = NodeInfo("9" * 56, "10.0.0.4", False, {"tp_strategy": 4.0})
NODES = [HEAD, STATE, WORKER, GONE]


@pytest.mark.parametrize(
    "spec", ["5" * 56, "10.0.0.2", "tp-role=state", "tp_state", "tp-role", " tp_state "]
)
def test_state_node_named_by_id_ip_label_or_resource_then_resolved(spec: str) -> None:
    assert resolve_node(spec, NODES, HEAD.node_id) == STATE


def test_state_node_unset_then_the_clis_node() -> None:
    assert resolve_node(None, NODES, WORKER.node_id) == WORKER


def test_state_node_naming_a_dead_node_then_refused_naming_the_live_ones() -> None:
    with pytest.raises(PlacementError, match=r"no live node matches .*10\.0\.0\.3"):
        resolve_node("10.0.0.4", NODES, HEAD.node_id)


def test_state_node_matching_several_nodes_then_refused_as_ambiguous() -> None:
    twin = NodeInfo("8" * 56, "10.0.0.2", True)
    with pytest.raises(PlacementError, match="matches 2 nodes"):
        resolve_node("10.0.0.2", [*NODES, twin], HEAD.node_id)


def test_eligible_when_resources_and_labels_asked_then_only_live_nodes_with_them() -> None:
    assert eligible(NODES, {"tp_strategy": 1.0}) == [WORKER]
    assert eligible(NODES, {}, {"zone": "b"}) == [WORKER]
    assert eligible(NODES, {"tp_strategy": 5.0}) == []
    assert eligible(NODES) == [HEAD, STATE, WORKER]


def test_node_table_when_a_node_rejoined_then_its_live_row_wins() -> None:
    rows = [
        {"NodeID": "n1", "NodeManagerAddress": "10.0.0.9", "Alive": True, "Resources": {}},
        {"NodeID": "n1", "NodeManagerAddress": "10.0.0.9", "Alive": False, "Resources": {}},
        {"NodeID": "n2", "NodeManagerAddress": "10.0.0.8", "Alive": False, "Labels": {"a": 1}},
    ]
    nodes = {n.node_id: n for n in nodes_from_table(rows)}
    assert nodes["n1"].alive and not nodes["n2"].alive and nodes["n2"].labels == {"a": "1"}
    assert HEAD.is_head and not STATE.is_head
