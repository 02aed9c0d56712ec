"""The runtime imports and runs without nats-py; asking for NATS then is a one-line error."""

from __future__ import annotations

import subprocess
import sys

from tests.cluster import ROOT

SCRIPT = """
import asyncio, sys
sys.modules["nats"] = None  # as if nats-py were not installed
import micro, micro.broker.nats, micro.registry.nats
from micro import broker, registry

async def main():
    try:
        await registry.from_env({"MICRO_REGISTRY": "nats"}).get_service("x")
    except registry.RegistryError as exc:
        print("registry:", exc)
    try:
        await broker.from_env({"MICRO_BROKER": "nats"}).publish(broker.Message("t", b""))
    except broker.BrokerError as exc:
        print("broker:", exc)

asyncio.run(main())
"""


def test_runtime_works_without_nats_py() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    hint = "the NATS backends need nats-py: pip install 'micro-runtime[nats]'"
    assert done.stdout.splitlines() == [f"registry: {hint}", f"broker: {hint}"]
