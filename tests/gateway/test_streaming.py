"""NDJSON request bodies, split into lines as their chunks arrive."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from micro.gateway.errors import HttpError
from micro.gateway.streaming import ndjson_lines


async def lines(chunks: list[bytes], limit: int = 10) -> list[tuple[int, bytes]]:
    async def source() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return [item async for item in ndjson_lines(source(), limit)]


async def test_lines_across_chunks_are_numbered_and_blank_ones_skipped() -> None:
    chunks = [b'{"a"', b":1}\n\n", b"  \r\n", b'{"b":2}\n{', b'"c":3}']
    assert await lines(chunks) == [(1, b'{"a":1}'), (4, b'{"b":2}'), (5, b'{"c":3}')]
    assert await lines([]) == []
    assert await lines([b"\n", b"\n"]) == []


@pytest.mark.parametrize(
    "chunks",
    [
        [b"12345\n", b"12345678901\n"],  # a whole line too long
        [b"12345\n123456", b"78901"],  # an unfinished line grows too long across chunks
    ],
)
async def test_a_line_over_the_limit_is_413_naming_it(chunks: list[bytes]) -> None:
    with pytest.raises(HttpError) as info:
        await lines(chunks)
    assert (info.value.code, info.value.detail) == (
        413,
        "line 2 of the body exceeds the limit of 10 bytes",
    )


async def test_a_line_at_the_limit_is_fine() -> None:
    assert await lines([b"1234567890\n", b"1234567890"]) == [
        (1, b"1234567890"),
        (2, b"1234567890"),
    ]
