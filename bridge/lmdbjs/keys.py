"""Decoding of lmdb-js keys (npm ``ordered-binary``, ``readKey`` in its index.js).

The encoding keeps keys sortable with plain ``memcmp``; the first byte says the type:

* ``0``: ``null`` (and the separator between the parts of an array key)
* ``2``: a symbol, followed by its description (``Symbol.for('x')`` -> ``b'\\x02x'``)
* ``6``/``7``: ``false``/``true``
* ``8``-``15``: a negative number, ``16``-``23``: a non-negative number (a float64
  shifted right by 4 bits behind a type nibble; trailing zero bytes are dropped, and
  bytes after the 9th add BigInt precision)
* ``27``: escape before a string whose first character is below 28 (or is empty)
* ``1``, ``3``-``5``: not produced by ordered-binary (raw binary keys); returned as bytes
* anything else: a UTF-8 string; inside it byte 4 escapes a following byte <= 4, and
  bytes 0-3 end it (they start the next part of an array key)
"""

from __future__ import annotations

import re
import struct
from typing import Any

from .types import Symbol

_F64 = struct.Struct(">d")
_SIGN_FLIP = 0x7FFFFFFFFFFFFFFF  # negative numbers are stored with all bits but the sign flipped
_SPECIAL = re.compile(b"[\x00-\x04]")  # string terminators (0-3) and the escape byte (4)


def decode_key(raw: bytes) -> Any:
    """Decode one lmdb-js key; an array key comes back as a list."""
    value, position = _read(raw, 0, False)
    return value


def decode_uint32_key(raw: bytes) -> int:
    """Keys of a ``keyEncoding: 'uint32'`` database (LMDB INTEGERKEY, host order)."""
    return int.from_bytes(raw, "little")


def _read(buf: bytes, start: int, in_sequence: bool) -> tuple[Any, int]:
    end = len(buf)
    if start >= end:
        return None, end
    control = buf[start]
    position = start
    if control < 24:
        if control < 8:
            position += 1
            if control == 6:
                value: Any = False
            elif control == 7:
                value = True
            elif control == 0:
                value = None
            elif control == 2:
                text, position = _read_string(buf, position)
                value = Symbol(text)
            else:
                # raw binary key (lmdb-js returns the remaining bytes as they are)
                return bytes(buf[start:end]), end
        else:
            value, position = _read_number(buf, start, control)
    else:
        if control == 27:
            position += 1
        value, position = _read_string(buf, position)
        if position < end:
            position -= 1  # the byte that ended the string doubles as the array separator
    parts: list[Any] | None = None
    while position < end:
        if buf[position] == 0:
            position += 1
        if in_sequence:
            return value, position
        next_value, position = _read(buf, position, True)
        if parts is None:
            parts = value if isinstance(value, list) else [value]
        parts.append(next_value)
    if parts is not None:
        return parts, position
    return value, position


def _read_string(buf: bytes, position: int) -> tuple[str, int]:
    """Read up to a byte 0-3 (consumed) or the end; byte 4 escapes the next byte."""
    end = len(buf)
    special = _SPECIAL.search(buf, position)
    if special is None:  # the usual case: the rest of the key is plain UTF-8
        return buf[position:].decode("utf-8", "replace"), end
    if buf[special.start()] != 4:
        return buf[position : special.start()].decode("utf-8", "replace"), special.start() + 1
    out = bytearray()
    while position < end:
        byte = buf[position]
        position += 1
        if byte > 4:
            out.append(byte)
        elif byte == 4:
            if position < end:
                out.append(buf[position])
                position += 1
        else:
            break
    return out.decode("utf-8", "replace"), position


def _read_number(buf: bytes, start: int, control: int) -> tuple[Any, int]:
    end = len(buf)
    size = end - start
    # missing trailing bytes are zeros (the writer drops zero bytes of short numbers)
    chunk = bytes(buf[start : start + 9]).ljust(9, b"\0")
    high = int.from_bytes(chunk[:8], "big")
    if size <= 6:
        high &= ~0xFFFF  # readKey clears bytes 6-7 of a 6-byte number
    if size <= 8:
        low_nibble = 0
    else:
        low_nibble = chunk[8] >> 4
    if control < 16:
        bits = ((high << 4) | low_nibble) ^ _SIGN_FLIP
    else:
        bits = ((high & ((1 << 60) - 1)) << 4) | low_nibble
    bits &= (1 << 64) - 1
    value: float = _F64.unpack(bits.to_bytes(8, "big"))[0]
    # a number always counts as 9 bytes, even when trailing zero bytes were dropped
    position = start + 9
    if size > 9 and buf[position] > 0:
        # BigInt keys: extra 7-bit groups refine the float (mirrors ordered-binary exactly)
        exponent = (bits >> 52) & 0x7FF
        big = int(value)
        nibble = buf[position - 1] & 0xF
        big += _shift(nibble, exponent - 1079)
        while position < end and buf[position] > 0:
            position += 1
            big += _shift(buf[position - 1] & 0x7F, (start - position) * 7 + exponent - 1016)
        return big, position
    return _js_number(value), position


def _shift(value: int, amount: int) -> int:
    return value << amount if amount >= 0 else value >> -amount


def _js_number(value: float) -> Any:
    """Keys are JavaScript numbers: give integral ones back as ``int`` (``5`` not ``5.0``)."""
    if value.is_integer() and abs(value) <= 2**53:
        return int(value)
    return value
