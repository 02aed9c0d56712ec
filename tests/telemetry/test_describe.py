"""`micro describe` tells whether each node exports metrics, and where (a real scrape)."""

from __future__ import annotations

import re
import urllib.request

import pytest

from tests.cli.helpers import micro, micro_json
from tests.cluster import Cluster


def test_describe_shows_where_each_node_exports_metrics(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = cluster.start("shop", "a")
    monkeypatch.setenv("MICRO_METRICS_ADDRESS", "127.0.0.1:0")
    metered = cluster.start("shop", "b")
    result = micro(cluster, "describe", "shop")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    shown = {
        line.split()[1]: lines[i + 1].strip()
        for i, line in enumerate(lines)
        if line.startswith("    shop-")
    }
    assert shown[plain.address] == "metrics: not exported"
    found = re.fullmatch(r"metrics: (http://127\.0\.0\.1:\d+/metrics)", shown[metered.address])
    assert found is not None, shown
    with urllib.request.urlopen(found.group(1), timeout=5) as answer:
        assert b"# TYPE micro_request_total counter" in answer.read()
    (record,) = micro_json(cluster, "describe", "shop")
    urls = {n["address"]: n["metadata"].get("metrics") for n in record["nodes"]}
    assert urls == {plain.address: None, metered.address: found.group(1)}
