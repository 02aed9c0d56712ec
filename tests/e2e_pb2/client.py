"""Calls with `_pb2` messages, in a process of their own (so the `_pb2` modules never meet
the other tests' copies): `python -m tests.e2e_pb2.client SERVICE|ADDRESS`; prints JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "golden-pb2"))

from editions.v1 import editions_pb2
from editions.v1.editions_micro import CounterClient
from streaming.v1.streaming_micro import StreamerClient, StreamerSyncClient

from tests.e2e_pb2.app import call_all_kinds, call_sync


async def main(target: str, with_editions: bool) -> None:
    address = target if ":" in target else None
    name = None if ":" in target else target
    result = await call_all_kinds(StreamerClient(name, address=address))
    if with_editions:
        added = await CounterClient(name, address=address).add(
            editions_pb2.Amount(value=41, note="n")
        )
        result["editions"] = [added.value, added.note]
    result["sync"] = await asyncio.to_thread(call_sync, StreamerSyncClient(name, address=address))
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], "--editions" in sys.argv))
