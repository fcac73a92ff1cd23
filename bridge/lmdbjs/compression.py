"""lmdb-js value compression (``open({ compression: true })``).

Facts taken from lmdb-js (``src/compression.cpp``, ``src/misc.cpp``, ``write.js``):

* A value is compressed when its encoded size is >= ``threshold`` (1000 bytes by
  default) **or** when its first byte is >= 0xFA, because 0xFA-0xFF are reserved as
  "status bytes" on read; so even a 1-byte msgpack ``-1`` (0xFF) gets compressed.
* A compressed value is ``0xFE`` + 3-byte big-endian uncompressed length, or, from
  16 MiB on, ``0xFF`` + one unused byte + 6-byte big-endian length, followed by a raw
  LZ4 block compressed against lmdb-js' dictionary (``dict/dict.txt``).
* The dictionary is truncated to a multiple of 8 bytes before use (both when
  compressing and decompressing), so we do the same.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import lz4.block

from .types import DecodeError

DICTIONARY_RESOURCE = "lmdbjs-dict.txt"


@lru_cache(maxsize=1)
def default_dictionary() -> bytes:
    """lmdb-js' default LZ4 dictionary, shipped as ``bridge/data/lmdbjs-dict.txt``."""
    data = resources.files("bridge").joinpath("data", DICTIONARY_RESOURCE).read_bytes()
    return data[: len(data) >> 3 << 3]


def is_compressed(value: bytes) -> bool:
    """True if ``value`` is an lmdb-js compressed value.

    A msgpack value starting with 0xFE/0xFF is a negative fixint, i.e. exactly one
    byte long; anything longer that starts with those bytes can only be compressed.
    """
    return len(value) > 1 and value[0] >= 0xFE


def decompress(value: bytes, dictionary: bytes | None = None) -> bytes:
    """Undo lmdb-js compression; raises :class:`DecodeError` with a reason on failure."""
    status = value[0]
    if status == 0xFE:
        if len(value) < 4:
            raise DecodeError("compressed value too short for its 4-byte header")
        size = int.from_bytes(value[1:4], "big")
        block = value[4:]
    elif status == 0xFF:
        if len(value) < 8:
            raise DecodeError("compressed value too short for its 8-byte header")
        # byte 1 is never written by lmdb-js (uninitialised memory): ignore it
        size = int.from_bytes(value[2:8], "big")
        block = value[8:]
    else:
        raise DecodeError(f"unknown lmdb-js compression status byte 0x{status:02x}")
    if dictionary is None:
        dictionary = default_dictionary()
    try:
        out = lz4.block.decompress(block, uncompressed_size=size, dict=dictionary)
    except lz4.block.LZ4BlockError:
        out = None
    if out is None or len(out) != size:
        # a database opened with a custom dictionary (compression: { dictionary })
        # or without one: a dictionary-less block is still a valid LZ4 block
        try:
            out = lz4.block.decompress(block, uncompressed_size=size)
        except lz4.block.LZ4BlockError as error:
            raise DecodeError(
                f"LZ4 decompression of a {len(value)}-byte value to {size} bytes failed: {error}"
            ) from None
        if len(out) != size:
            raise DecodeError(
                f"LZ4 block decompressed to {len(out)} bytes, header says {size}"
            )
    return bytes(out)
