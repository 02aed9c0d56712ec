"""Message types for the gateway, fetched from the services over gRPC reflection.

One descriptor pool per registry service, filled on first use (`micro.dynamic`)
and dropped when the service's endpoints change, so a redeployed service with new fields is
picked up. The reflection stream is closed after each load: no node stays pinned.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import micro
from micro.dynamic import Descriptors, DynamicMethod, NotFound, Reflection, ReflectionError, Target
from micro.gateway.errors import HttpError, from_dynamic

__all__ = ["Catalog"]


@dataclass
class _Entry:
    signature: tuple[object, ...]
    reflection: Reflection
    descriptors: Descriptors
    methods: dict[str, DynamicMethod] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Catalog:
    def __init__(self, client: micro.Client, *, timeout: float = 10.0) -> None:
        self._client = client
        self._timeout = timeout
        self._entries: dict[str, _Entry] = {}

    def forget_changed(self, signatures: dict[str, tuple[object, ...]]) -> None:
        """Drop the pools of services that are gone or whose endpoints changed."""
        for name in list(self._entries):
            if signatures.get(name) != self._entries[name].signature:
                del self._entries[name]

    async def method(
        self, service: str, grpc_path: str, signature: tuple[object, ...]
    ) -> DynamicMethod:
        entry = self._entries.get(service)
        if entry is None or entry.signature != signature:
            reflection = Reflection(self._client, Target(service=service), timeout=self._timeout)
            entry = _Entry(signature, reflection, Descriptors(reflection))
            self._entries[service] = entry
        found = entry.methods.get(grpc_path)
        if found is not None:
            return found
        async with entry.lock:
            found = entry.methods.get(grpc_path)
            if found is None:
                found = await self._load(service, entry, grpc_path)
                entry.methods[grpc_path] = found
        return found

    async def _load(self, service: str, entry: _Entry, grpc_path: str) -> DynamicMethod:
        proto_service = grpc_path.lstrip("/").partition("/")[0]
        try:
            async with asyncio.timeout(self._timeout):
                await entry.descriptors.load_symbol(proto_service)
            return entry.descriptors.method(grpc_path)
        except NotFound as exc:
            raise from_dynamic(exc, f"{service}: reflection does not know {grpc_path}") from None
        except ReflectionError as exc:
            raise from_dynamic(exc, service) from None
        except TimeoutError:
            raise HttpError(
                504, f"{service}: reflection did not answer within {self._timeout:g}s"
            ) from None
        finally:
            await entry.reflection.close()

    async def close(self) -> None:
        entries, self._entries = self._entries, {}
        for entry in entries.values():
            await entry.reflection.close()
