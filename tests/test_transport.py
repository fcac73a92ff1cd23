"""The read loop in-process, on a real asyncio.StreamReader: framing and number fidelity.

The bridge parses with orjson and falls back to the stdlib, which alone keeps integers beyond
64 bits exact; these cases pin which bodies take which path by what comes out.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bridge.rpc.transport import GuardedReader, read_messages


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


async def read_all(data: bytes, chunk: int | None = None) -> tuple[list[Any], list[Exception]]:
    stream = asyncio.StreamReader()
    messages: list[Any] = []
    errors: list[Exception] = []
    reader = GuardedReader(stream, on_oversized=lambda n: errors.append(OverflowError(n)))
    loop = read_messages(reader, messages.append, errors.append, errors.append)
    task = asyncio.ensure_future(loop)
    step = chunk or len(data) or 1
    for start in range(0, len(data), step):
        stream.feed_data(data[start:start + step])
        await asyncio.sleep(0)  # let the loop take what is buffered before the next piece
    stream.feed_eof()
    await asyncio.wait_for(task, 5)
    return messages, errors


@pytest.mark.parametrize("number", [
    "9223372036854775807",    # 19 digits, the largest int64: orjson would do, the stdlib is exact too
    "9999999999999999999",    # 19 digits beyond int64
    "18446744073709551616",   # 2**64
    "-9223372036854775809",   # below int64
    "100000000000000000000000000000",
])
async def test_integers_of_19_or_more_digits_stay_exact(number: str) -> None:
    body = b'{"jsonrpc":"2.0","id":%s,"method":"agent.status","params":{"n":%s}}' % (number.encode(), number.encode())
    messages, errors = await read_all(frame(body))
    assert errors == []
    assert messages == [{"jsonrpc": "2.0", "id": int(number), "method": "agent.status", "params": {"n": int(number)}}]
    assert type(messages[0]["id"]) is int


@pytest.mark.parametrize("text", [
    "123456789012345678",          # 18 digits: orjson's int
    "1234567890.123456789",        # 19 digits with a point between: a float either way
    "12345678901234567890e-10",    # a float written with 20 digits
    "0.1234567890123456789",
])
async def test_other_numbers_parse_as_the_stdlib_would(text: str) -> None:
    body = b'{"jsonrpc":"2.0","method":"x","params":{"v":%s,"s":"%s"}}' % (text.encode(), text.encode())
    messages, errors = await read_all(frame(body))
    assert errors == []
    assert messages == [json.loads(body)]


async def test_frames_split_at_every_byte_arrive_whole_and_in_order() -> None:
    bodies = [json.dumps({"jsonrpc": "2.0", "method": "m", "params": {"i": i, "t": "é" * i}}).encode()
              for i in range(5)]
    data = b"".join(frame(body) for body in bodies)
    whole, _ = await read_all(data)
    bytewise, errors = await read_all(data, chunk=1)
    assert errors == []
    assert whole == bytewise == [json.loads(body) for body in bodies]


async def test_a_body_that_is_not_json_is_one_parse_error_and_the_next_frame_still_arrives() -> None:
    good = b'{"jsonrpc":"2.0","method":"m"}'
    messages, errors = await read_all(frame(b"{not json") + frame(good))
    assert [type(e) for e in errors] == [json.JSONDecodeError]
    assert messages == [json.loads(good)]
