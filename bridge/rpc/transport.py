"""Stdio transport for pygls' ``run_async``: an asyncio reader that guards the framing.

pygls' default stdio reader hops to a thread for every header line and body (measured
3 hops/message); an asyncio StreamReader on the stdin pipe reads without them. The guard
enforces the frame-size limit and turns a stream that ended mid-frame into a clean EOF,
and the writer encodes with orjson (correct byte lengths for non-ASCII, and faster).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import sys
import threading
from typing import Any, BinaryIO, Callable

import orjson

MAX_FRAME_BYTES = 8 * 1024 * 1024
MAX_HEADER_LINE = 64 * 1024
# Integers of 19+ digits may not fit in 64 bits. Found by mapping every ASCII digit to "0" and
# everything else to a space, then a substring search: 0.4 µs per event where the regex
# rb"\d{19}" took 3 µs (a sixth of the bridge's time per event in the replay bench).
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_NINETEEN_DIGITS = b"0" * 19
_LENIENT_CONTENT_LENGTH = re.compile(rb"^content-length[ \t]*:[ \t]*(\d+)[ \t]*\r?\n$", re.IGNORECASE)


class FrameTooLarge(Exception):
    pass


class GuardedReader:
    """What the read loop reads from: lines and bodies, taken from the buffer when whole there.

    Serves them from its own buffer, filled by large reads of the pipe:
    asyncio.StreamReader.readline costs more per call than parsing the frame does.
    """

    CHUNK = 1 << 16

    def __init__(self, reader: asyncio.StreamReader, *, on_oversized: Callable[[int], None],
                 record: Callable[[bytes], None] | None = None,
                 record_frame: Callable[[bytes], None] | None = None):
        self._reader = reader
        self._on_oversized = on_oversized
        self._record = record
        self._record_frame = record_frame
        self._buffer = bytearray()
        self._pos = 0
        self._eof = False
        self.closed_by_guard = False

    async def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = await self._reader.read(self.CHUNK)
        if not chunk:
            self._eof = True
            return False
        if self._pos > self.CHUNK:
            del self._buffer[:self._pos]
            self._pos = 0
        self._buffer += chunk
        return True

    async def readline(self) -> bytes:
        while True:
            line = self.take_line()
            if line is not None:
                return line
            if len(self._buffer) - self._pos > MAX_HEADER_LINE:
                # Garbage without line breaks, not a header: drop it. A non-empty line that
                # matches no header keeps the read loop scanning for the next frame.
                self._pos = len(self._buffer)
                return b"X-Skipped: overlong header line\r\n"
            if not await self._fill():
                line = bytes(self._buffer[self._pos:])
                self._pos = len(self._buffer)
                return line

    def take_line(self) -> bytes | None:
        """The next line if the buffer holds all of it, else None (then await ``readline``).

        The read loop calls this first: most frames arrive whole in one pipe read, and a plain
        call is several times cheaper than awaiting a coroutine that never suspends.
        """
        if self.closed_by_guard:
            return b""
        end = self._buffer.find(b"\n", self._pos)
        if end < 0:
            return None
        line = bytes(self._buffer[self._pos:end + 1])
        self._pos = end + 1
        if line[:1] in b"Cc" and not (line.startswith(b"Content-Length: ") and line.endswith(b"\r\n")
                                      and line[16:-2].isdigit()):
            # pygls honours exactly "Content-Length: <digits>\r\n"; accept what HTTP-style
            # framing allows too (any case, spaces, a bare \n), or the next frames would be lost.
            match = _LENIENT_CONTENT_LENGTH.match(line)
            if match:
                line = b"Content-Length: %s\r\n" % match.group(1)
        if len(line) > 24 and line.startswith(b"Content-Length: "):
            length = line[16:].strip()
            if length.isdigit() and int(length) > MAX_FRAME_BYTES:
                # The stream cannot be resynchronised safely: stop reading (the server flushes).
                self.closed_by_guard = True
                if self._record_frame is not None:
                    self._record_frame(line + b"\r\n")
                self._on_oversized(int(length))
                return b""
        return line

    async def readexactly(self, n: int) -> bytes:
        while len(self._buffer) - self._pos < n:
            if not await self._fill():
                return b""  # host gone mid-frame: treat as end of input
        return self.take_exactly(n)

    def take_exactly(self, n: int) -> bytes | None:
        """The next n bytes if the buffer holds them, else None (then await ``readexactly``)."""
        if len(self._buffer) - self._pos < n:
            return None
        body = bytes(self._buffer[self._pos:self._pos + n])
        self._pos += n
        if self._record is not None:
            self._record(body)
        return body


async def read_messages(reader: GuardedReader, handle: Callable[[Any], None],
                        on_parse_error: Callable[[Exception], None],
                        on_error: Callable[[Exception], None]) -> None:
    """The read loop: pygls' ``run_async`` with orjson first and the stdlib as the arbiter.

    Measured with the plugin's client (vscode-jsonrpc): run_async's stdlib ``json.loads`` with
    an ``object_hook`` called for every nested object was a fifth of the bridge's time per
    event, and kept it at 0.75-0.80x the hand-written floor against a 0.8x target. Framing is
    exactly run_async's (first ``Content-Length`` wins, a blank line starts the body, length 0
    is no length). Whatever orjson refuses goes to ``json.loads``, so what parses, and every
    parse error's text, is the stdlib's as before (orjson rejects NaN and lone surrogates, which
    JSON allows, and turns integers beyond 64 bits into floats: bodies with 19+ digit runs go
    straight to the stdlib).
    """
    content_length = 0
    while True:
        header = reader.take_line()
        if header is None:
            header = await reader.readline()
        if not header:
            return
        if not content_length and header.startswith(b"Content-Length: "):
            value = header[16:-2]
            if header.endswith(b"\r\n") and value.isdigit():
                content_length = int(value)
        if content_length and not header.strip():
            body = reader.take_exactly(content_length)
            if body is None:
                body = await reader.readexactly(content_length)
            content_length = 0
            if not body:
                return
            try:
                if _NINETEEN_DIGITS in body.translate(_DIGITS_AS_ZERO):
                    message = json.loads(body)  # orjson turns integers beyond 64 bits into floats
                else:
                    try:
                        message = orjson.loads(body)
                    except orjson.JSONDecodeError:
                        message = json.loads(body)
            except (ValueError, RecursionError) as exc:
                on_parse_error(exc)
                continue
            try:
                handle(message)
            except Exception as exc:  # one bad message must not end the loop
                on_error(exc)


async def stdin_reader(stdin: BinaryIO | None = None) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    pipe = stdin or sys.stdin.buffer
    mode = os.fstat(pipe.fileno()).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        # The normal case (spawned by the plugin): the event loop reads the pipe directly.
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    else:
        # A file, a terminal or /dev/null: epoll cannot wait on those, so a thread reads.
        threading.Thread(target=_pump, args=(pipe.fileno(), reader, loop), daemon=True,
                         name="stdin-reader").start()
    return reader


def _pump(fd: int, reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop) -> None:
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            chunk = b""
        if not chunk:
            loop.call_soon_threadsafe(reader.feed_eof)
            return
        loop.call_soon_threadsafe(reader.feed_data, chunk)


class StdoutWriter:
    """Blocking writes to fd 1: outgoing messages are few (responses, logs) and small."""

    def __init__(self, stdout: BinaryIO | None = None,
                 record: Callable[[Any], None] | None = None):
        self._fd = (stdout or sys.stdout.buffer).fileno()
        self._record = record
        self.broken = False

    def send(self, message: Any) -> None:
        if self.broken:
            return
        try:
            body = orjson.dumps(message)
        except TypeError:
            # An id beyond 64 bits or a lone surrogate echoed from the host: the stdlib encoder
            # writes both as valid JSON (escaped), so the host still gets its answer.
            body = json.dumps(message, ensure_ascii=True, default=str).encode()
        data = b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except (BrokenPipeError, OSError):
            self.broken = True  # host gone; the read side will see EOF and we flush then
            return
        if self._record is not None:
            self._record(message)
