"""``Stub``: the base class of generated clients."""

from __future__ import annotations

from collections.abc import AsyncIterable, Coroutine, Iterable
from typing import Any

from micro.client import Client, default
from micro.metadata import Metadata
from micro.spec import Method, Req, Resp
from micro.streams import BidiStream, ServerStream

__all__ = ["Stub"]


class Stub:
    """Calls one service by registry name, or a static ``address="host:port"``
    (which bypasses discovery), through ``client`` (default: :func:`micro.client.default`).

    Every attribute of Stub itself starts with an underscore, so rpc names never clash.
    """

    __slots__ = ("_address", "_client_arg", "_service")

    def __init__(
        self,
        service: str | None = None,
        /,
        *,
        address: str | None = None,
        client: Client | None = None,
    ) -> None:
        if service is None and address is None:
            raise ValueError("Stub needs a service name or an address")
        self._service = service
        self._address = address
        self._client_arg = client

    @property
    def _client(self) -> Client:
        return self._client_arg if self._client_arg is not None else default()

    def _unary(
        self,
        method: Method[Req, Resp],
        request: Req,
        /,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Coroutine[Any, Any, Resp]:
        return self._client.unary(
            method,
            request,
            service=self._service,
            address=self._address,
            timeout=timeout,
            metadata=metadata,
        )

    def _server_stream(
        self,
        method: Method[Req, Resp],
        request: Req,
        /,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> ServerStream[Resp]:
        return self._client.server_stream(
            method,
            request,
            service=self._service,
            address=self._address,
            timeout=timeout,
            metadata=metadata,
        )

    async def _client_stream(
        self,
        method: Method[Req, Resp],
        requests: Iterable[Req] | AsyncIterable[Req],
        /,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> Resp:
        return await self._client.client_stream(
            method,
            requests,
            service=self._service,
            address=self._address,
            timeout=timeout,
            metadata=metadata,
        )

    def _bidi_stream(
        self,
        method: Method[Req, Resp],
        /,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
    ) -> BidiStream[Req, Resp]:
        return self._client.bidi_stream(
            method,
            service=self._service,
            address=self._address,
            timeout=timeout,
            metadata=metadata,
        )

    def __repr__(self) -> str:
        target = self._address if self._address is not None else self._service
        return f"{type(self).__name__}({target!r})"
