"""Run the `micro` console script as a user would, against a cluster's local registry."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.cluster import Cluster
from tests.tooling.helpers import BIN, ROOT, env, one_line_error

__all__ = ["ROOT", "micro", "micro_json", "one_line_error"]


def micro(
    cluster: Cluster, *args: str, timeout: float = 120, **extra: str
) -> subprocess.CompletedProcess[str]:
    environ = {
        **env(),
        "MICRO_REGISTRY": "local",
        "MICRO_REGISTRY_PATH": str(cluster.registry_path),
        **extra,
    }
    return subprocess.run(
        [str(BIN / "micro"), *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def micro_json(cluster: Cluster, *args: str) -> Any:
    result = micro(cluster, *args, "--output", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
