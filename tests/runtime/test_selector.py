"""Node selection strategies."""

from __future__ import annotations

import collections
import threading

import pytest

from micro.registry import Node
from micro.selector import NoNodes, Random, RoundRobin, Selector, from_env, selectors

NODES = tuple(Node(f"n{i}", f"127.0.0.1:{9000 + i}") for i in range(4))


def test_round_robin_cycles_exactly() -> None:
    rr = RoundRobin()
    picks = [rr.select(NODES, service="greeter").id for _ in range(12)]
    assert picks == ["n0", "n1", "n2", "n3"] * 3


def test_round_robin_is_per_service() -> None:
    rr = RoundRobin()
    assert rr.select(NODES, service="a") is NODES[0]
    assert rr.select(NODES, service="a") is NODES[1]
    assert rr.select(NODES, service="b") is NODES[0]  # independent counter
    assert rr.select(NODES, service="a") is NODES[2]
    # Without a service name the node set is the key.
    other = (Node("x", "h:1"), Node("y", "h:2"))
    assert [rr.select(other).id for _ in range(3)] == ["x", "y", "x"]
    assert rr.select(NODES) is NODES[0]


def test_round_robin_survives_node_set_changes() -> None:
    rr = RoundRobin()
    for _ in range(5):
        rr.select(NODES, service="s")
    assert rr.select(NODES[:1], service="s") is NODES[0]
    assert rr.select(NODES[:2], service="s") in NODES[:2]


def test_round_robin_is_thread_safe() -> None:
    rr = RoundRobin()
    counts: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def worker() -> None:
        local = collections.Counter(rr.select(NODES, service="s").id for _ in range(1000))
        with lock:
            counts.update(local)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert counts == {n.id: 2000 for n in NODES}  # 8000 picks spread exactly evenly


def test_round_robin_bounds_its_state() -> None:
    rr = RoundRobin(max_keys=2)
    rr.select(NODES, service="a")
    rr.select(NODES, service="b")
    rr.select(NODES, service="c")  # evicts "a"
    assert rr.select(NODES, service="a") is NODES[0]
    with pytest.raises(ValueError):
        RoundRobin(max_keys=0)


def test_random_covers_all_nodes() -> None:
    sel = Random(seed=1234)
    counts = collections.Counter(sel.select(NODES, service="s").id for _ in range(2000))
    assert set(counts) == {n.id for n in NODES}
    assert all(300 < c < 700 for c in counts.values()), counts  # roughly uniform
    unseeded = Random()
    assert {unseeded.select(NODES).id for _ in range(500)} == {n.id for n in NODES}


def test_single_node() -> None:
    for sel in (Random(), RoundRobin()):
        assert sel.select(NODES[:1]) is NODES[0]


@pytest.mark.parametrize("sel", [Random(), RoundRobin()], ids=["random", "roundrobin"])
def test_empty_raises_no_nodes(sel: Selector) -> None:
    with pytest.raises(NoNodes, match="no nodes available for service 'greeter'") as info:
        sel.select([], service="greeter")
    assert isinstance(info.value, LookupError)
    assert info.value.service == "greeter"
    with pytest.raises(LookupError):
        sel.select(())


def test_from_env() -> None:
    assert isinstance(from_env({}), Random)
    assert isinstance(from_env({"MICRO_SELECTOR": "random"}), Random)
    assert isinstance(from_env({"MICRO_SELECTOR": "roundrobin"}), RoundRobin)
    assert isinstance(from_env({"MICRO_SELECTOR": " Round_Robin "}), RoundRobin)
    assert isinstance(from_env({"MICRO_SELECTOR": "round-robin"}), Selector)
    assert selectors() == ["random", "roundrobin"]


def test_from_env_unknown_lists_valid_values() -> None:
    with pytest.raises(ValueError) as info:
        from_env({"MICRO_SELECTOR": "leastconn"})
    msg = str(info.value)
    assert "leastconn" in msg and "MICRO_SELECTOR" in msg
    assert "random" in msg and "roundrobin" in msg
