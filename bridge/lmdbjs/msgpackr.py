"""Decoder for values written by lmdb-js' default encoder (npm ``msgpackr``, ``unpack.js``).

msgpackr writes standard MessagePack plus "records" and a few extensions:

* **Records**: an object is written as a record-structure reference (a byte
  0x40-0x7F) followed by its values only. The structure (list of keys) is either
  *shared* (saved once per database under the ``sharedStructuresKey``, e.g.
  ``Symbol.for('structures:agents')``; up to 32 by default) or defined inline
  in the value (extension 0x72 ``'r'``: ``d4 72 <id>`` + key array, or the two-byte
  form ``d5 72 <id> <high byte>``). Inline ("own") structures live for one value only.
  Without shared structures a value can define 64 own ids, with them 32 (0x60-0x7F),
  after which ids are reused inside the value. With ``maxSharedStructures`` > 32 a
  structure index >= 32 is written as two bytes (``0x60 + (i-32) % 32``,
  ``(i-32) // 32``). A byte 0x40-0x7F with no known structure is a plain integer.
* Extension -1 (0xFF): timestamps (32-bit seconds, 64-bit nanoseconds+seconds,
  96-bit for dates before 1970 / from 2106 on); a 1-byte payload is an invalid Date.
* Extension 0: ``undefined``.
* Optional extensions (``moreTypes``/``structuredClone``/``bundleStrings`` options):
  0x42 BigInt, 0x65 Error, 0x73 Set, 0x78 RegExp, 0x74 typed arrays, 0x69/0x70
  object identity for shared/cyclic references, 0x62 bundled strings (0xC1 tokens).

Maps decode to ``dict`` (lmdb-js' decoder returns a ``Map``; non-hashable keys become
tuples). Floats are returned exactly as stored (float32 widened without rounding).
Every problem raises :class:`DecodeError` for that value only.
"""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone
from typing import Any

from .types import (
    DecodeError,
    InvalidDate,
    JsError,
    JsRegExp,
    JsTypedArray,
    Undefined,
)

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_U16 = struct.Struct(">H").unpack_from
_U32 = struct.Struct(">I").unpack_from
_U64 = struct.Struct(">Q").unpack_from
_I8 = struct.Struct(">b").unpack_from
_I16 = struct.Struct(">h").unpack_from
_I32 = struct.Struct(">i").unpack_from
_I64 = struct.Struct(">q").unpack_from
_F32 = struct.Struct(">f").unpack_from
_F64 = struct.Struct(">d").unpack_from
_TS64 = struct.Struct(">II").unpack_from
_TS96 = struct.Struct(">Iq").unpack_from

# constructor names by msgpackr's typed-array code (extension 0x74)
_TYPED_ARRAYS = (
    "Int8Array",
    "Uint8Array",
    "Uint8ClampedArray",
    "Int16Array",
    "Uint16Array",
    "Int32Array",
    "Uint32Array",
    "Float32Array",
    "Float64Array",
    "BigInt64Array",
    "BigUint64Array",
)

# A structure: its keys, and the "high byte" msgpackr attaches to structures that are
# addressed with two bytes (None for ordinary one-byte ids).
Structure = tuple[tuple[str, ...], int | None]


def shared_structures_from(value: Any) -> dict[int, Structure]:
    """Turn the decoded value stored under a ``sharedStructuresKey`` into a lookup table.

    Mirrors ``Unpackr._mergeStructures``: index i < 32 is id i; from 32 on, the
    structure carries high byte ``(i - 32) >> 5`` (the two-byte id scheme).
    """
    if not isinstance(value, list):
        raise DecodeError(f"shared structures must be an array, found {type(value).__name__}")
    table: dict[int, Structure] = {}
    for index, keys in enumerate(value):
        if keys is None or keys is Undefined:
            continue
        if not isinstance(keys, list):
            raise DecodeError(f"shared structure {index} is not an array of keys")
        table[index] = (
            tuple(_as_key_string(k) for k in keys),
            (index - 32) >> 5 if index >= 32 else None,
        )
    return table


def looks_like_shared_structures(value: Any) -> bool:
    return isinstance(value, list) and all(
        k is None or (isinstance(k, list) and all(isinstance(x, str) for x in k)) for k in value
    )


class Decoder:
    """Decodes msgpackr values of one database (one set of shared structures).

    Not thread-safe: it keeps the state of the value being decoded on the instance.
    """

    def __init__(self, shared_structures: dict[int, Structure] | None = None) -> None:
        self.shared: dict[int, Structure] = shared_structures or {}
        # how many values used a record byte with no known structure (read as an int,
        # like msgpackr does): a hint that the shared structures were not found
        self.unknown_record_ids = 0
        self._data = b""
        self._pos = 0
        self._own: dict[int, Structure] = {}
        self._refs: dict[int, list[Any]] | None = None
        self._bundle: list[Any] | None = None

    def decode(self, data: bytes) -> Any:
        self._data = data
        self._pos = 0
        self._own = {}
        self._refs = None
        self._bundle = None
        try:
            value = self._read()
            if self._bundle is not None:
                # bundled strings sit after the value: continue behind them
                self._pos = self._bundle[4]
        except DecodeError:
            raise
        except IndexError:
            raise DecodeError("unexpected end of MessagePack data") from None
        except struct.error:
            raise DecodeError("unexpected end of MessagePack data") from None
        except RecursionError:
            raise DecodeError("value nested too deeply to decode") from None
        except (ValueError, OverflowError, TypeError, UnicodeDecodeError) as error:
            raise DecodeError(f"invalid MessagePack data: {error}") from None
        finally:
            self._data = b""
            self._own = {}
            self._refs = None
            self._bundle = None
        if self._pos != len(data):
            if self._pos > len(data):
                raise DecodeError("unexpected end of MessagePack data")
            raise DecodeError(
                f"data read, but {len(data) - self._pos} trailing bytes were left"
            )
        return value

    # ------------------------------------------------------------------ core

    def _read(self) -> Any:
        data = self._data
        pos = self._pos
        token = data[pos]
        pos += 1
        if token < 0xA0:
            if token < 0x80:
                if token < 0x40:
                    self._pos = pos
                    return token
                self._pos = pos
                return self._read_record(token)
            if token < 0x90:
                self._pos = pos
                return self._read_map(token - 0x80)
            self._pos = pos
            read = self._read
            return [read() for _ in range(token - 0x90)]
        if token < 0xC0:
            end = pos + token - 0xA0
            if end > len(data):
                raise IndexError
            self._pos = end
            return data[pos:end].decode("utf-8", "replace")
        if token >= 0xE0:
            self._pos = pos
            return token - 0x100
        if token == 0xC0:
            self._pos = pos
            return None
        if token == 0xC2:
            self._pos = pos
            return False
        if token == 0xC3:
            self._pos = pos
            return True
        if token == 0xCB:
            self._pos = pos + 8
            return _F64(data, pos)[0]
        if token == 0xCC:
            self._pos = pos + 1
            return data[pos]
        if token == 0xCD:
            self._pos = pos + 2
            return _U16(data, pos)[0]
        if token == 0xCE:
            self._pos = pos + 4
            return _U32(data, pos)[0]
        if token == 0xD9:
            return self._read_str(pos + 1, data[pos])
        if token == 0xDA:
            return self._read_str(pos + 2, _U16(data, pos)[0])
        if token == 0xDB:
            return self._read_str(pos + 4, _U32(data, pos)[0])
        if 0xD4 <= token <= 0xD8:
            ext_type = data[pos]
            if ext_type == 0x72 and token <= 0xD5:
                if token == 0xD4:
                    self._pos = pos + 2
                    return self._define_record(data[pos + 1] & 0x3F, None)
                self._pos = pos + 3
                return self._define_record(data[pos + 1] & 0x3F, data[pos + 2])
            size = 1 << (token - 0xD4)
            start = pos + 1
            return self._read_ext(ext_type, start, start + size)
        if token == 0xC7:
            size = data[pos]
            return self._read_ext(data[pos + 1], pos + 2, pos + 2 + size)
        if token == 0xC8:
            size = _U16(data, pos)[0]
            return self._read_ext(data[pos + 2], pos + 3, pos + 3 + size)
        if token == 0xC9:
            size = _U32(data, pos)[0]
            return self._read_ext(data[pos + 4], pos + 5, pos + 5 + size)
        if token == 0xCA:
            self._pos = pos + 4
            return _F32(data, pos)[0]
        if token == 0xCF:
            self._pos = pos + 8
            return _U64(data, pos)[0]
        if token == 0xD0:
            self._pos = pos + 1
            return _I8(data, pos)[0]
        if token == 0xD1:
            self._pos = pos + 2
            return _I16(data, pos)[0]
        if token == 0xD2:
            self._pos = pos + 4
            return _I32(data, pos)[0]
        if token == 0xD3:
            self._pos = pos + 8
            return _I64(data, pos)[0]
        if token == 0xC4:
            return self._read_bin(pos + 1, data[pos])
        if token == 0xC5:
            return self._read_bin(pos + 2, _U16(data, pos)[0])
        if token == 0xC6:
            return self._read_bin(pos + 4, _U32(data, pos)[0])
        if token == 0xDC:
            self._pos = pos + 2
            read = self._read
            return [read() for _ in range(_U16(data, pos)[0])]
        if token == 0xDD:
            self._pos = pos + 4
            read = self._read
            return [read() for _ in range(_U32(data, pos)[0])]
        if token == 0xDE:
            self._pos = pos + 2
            return self._read_map(_U16(data, pos)[0])
        if token == 0xDF:
            self._pos = pos + 4
            return self._read_map(_U32(data, pos)[0])
        if token == 0xC1:
            self._pos = pos
            return self._read_bundled_string()
        raise DecodeError(f"unknown MessagePack token 0x{token:02x}")  # pragma: no cover

    def _read_str(self, start: int, length: int) -> str:
        end = start + length
        if end > len(self._data):
            raise IndexError
        self._pos = end
        return self._data[start:end].decode("utf-8", "replace")

    def _read_bin(self, start: int, length: int) -> bytes:
        end = start + length
        if end > len(self._data):
            raise IndexError
        self._pos = end
        return bytes(self._data[start:end])

    def _read_map(self, count: int) -> dict[Any, Any]:
        read = self._read
        result: dict[Any, Any] = {}
        for _ in range(count):
            key = read()
            if not isinstance(key, str):
                key = _hashable(key)
            result[key] = read()
        return result

    # ------------------------------------------------------------------ records

    def _structure(self, record_id: int) -> Structure | None:
        structure = self._own.get(record_id)
        if structure is None:
            structure = self.shared.get(record_id)
        return structure

    def _read_record(self, token: int) -> Any:
        first_id = token & 0x3F
        structure = self._structure(first_id)
        if structure is None:
            # msgpackr reads an unknown record byte as the integer itself
            self.unknown_record_ids += 1
            return token
        keys, high_byte = structure
        while high_byte == 0:
            # two-byte record id: the next byte picks the structure (0 = this one)
            high = self._data[self._pos]
            self._pos += 1
            if high == 0:
                break
            record_id = -(first_id + (high << 5)) if first_id < 32 else first_id + (high << 5)
            structure = self._structure(record_id)
            if structure is None:
                raise DecodeError(f"record id {record_id} is not defined")
            keys, high_byte = structure
        read = self._read
        return {key: read() for key in keys}

    def _define_record(self, first_id: int, high_byte: int | None) -> Any:
        """Inline record definition (extension 0x72): the key list, then the first object."""
        keys = self._read()
        if not isinstance(keys, list):
            raise DecodeError("record definition without an array of keys")
        keys_tuple = tuple(_as_key_string(k) for k in keys)
        record_id = first_id
        if high_byte is not None:
            record_id = (
                -((high_byte << 5) + first_id) if first_id < 32 else (high_byte << 5) + first_id
            )
        self._own[record_id] = (keys_tuple, high_byte)
        # the object defined here follows directly: no high byte to read before it
        read = self._read
        return {key: read() for key in keys_tuple}

    # ------------------------------------------------------------------ extensions

    def _read_ext(self, ext_type: int, start: int, end: int) -> Any:
        data = self._data
        if end > len(data):
            raise IndexError
        self._pos = end
        if ext_type == 0xFF:
            return _timestamp(data, start, end - start)
        if ext_type == 0x00:
            return Undefined
        if ext_type == 0x42:
            if end == start:
                raise DecodeError("empty BigInt extension")
            return int.from_bytes(data[start:end], "big", signed=True)
        if ext_type == 0x65:
            parts = self._read()
            if not isinstance(parts, list) or len(parts) < 2:
                raise DecodeError("Error extension without [name, message, cause]")
            return JsError(parts[0], parts[1], parts[2] if len(parts) > 2 else Undefined)
        if ext_type == 0x73:
            members = self._read()
            if not isinstance(members, list):
                raise DecodeError("Set extension without an array of members")
            try:
                return set(members)
            except TypeError:
                raise DecodeError("Set with members that are objects or arrays") from None
        if ext_type == 0x78:
            parts = self._read()
            if not isinstance(parts, list) or len(parts) != 2:
                raise DecodeError("RegExp extension without [source, flags]")
            return JsRegExp(parts[0], parts[1])
        if ext_type == 0x74:
            if end == start:
                raise DecodeError("typed-array extension without a type code")
            code = data[start]
            payload = bytes(data[start + 1 : end])
            if code == 1:
                return payload  # Uint8Array: same as a msgpack bin
            if code < len(_TYPED_ARRAYS):
                return JsTypedArray(_TYPED_ARRAYS[code], payload)
            if code == 16:
                return JsTypedArray("ArrayBuffer", payload)
            if code == 17:
                return JsTypedArray("DataView", payload)
            raise DecodeError(f"unknown typed-array code {code}")
        if ext_type == 0x69:
            return self._read_identified(_U32(data, end - 4)[0])
        if ext_type == 0x70:
            ref_id = _U32(data, end - 4)[0]
            entry = (self._refs or {}).get(ref_id)
            if entry is None:
                raise DecodeError(f"reference to undefined object id {ref_id}")
            entry[1] = True
            return entry[0]
        if ext_type == 0x62:
            return self._read_bundle(start, end)
        raise DecodeError(f"unsupported msgpackr extension type 0x{ext_type:02x}")

    def _read_identified(self, ref_id: int) -> Any:
        """Extension 0x69 (structuredClone): the next value can be referenced by id.

        A placeholder container is registered first so that a cycle (a reference to
        the object from inside itself) resolves to the same Python object.
        """
        if self._refs is None:
            self._refs = {}
        token = self._data[self._pos]
        placeholder: Any
        if 0x90 <= token < 0xA0 or token in (0xDC, 0xDD):
            placeholder = []
        else:
            placeholder = {}
        entry = [placeholder, False]
        self._refs[ref_id] = entry
        value = self._read()
        if not entry[1]:
            entry[0] = value
            return value
        if isinstance(placeholder, list) and isinstance(value, list):
            placeholder.extend(value)
        elif isinstance(placeholder, dict) and isinstance(value, dict):
            placeholder.update(value)
        else:
            raise DecodeError("cyclic reference to a value that is not an object or array")
        return placeholder

    def _read_bundle(self, start: int, end: int) -> Any:
        """Extension 0x62 (bundleStrings): strings are stored after the value.

        The first 4 payload bytes give the distance from the payload start to two
        strings (non-Latin ones, then ASCII ones); 0xC1 tokens take slices of them.
        """
        data = self._data
        distance = _U32(data, start)[0]
        value_position = end
        self._pos = start + distance
        two_byte = self._read_plain_string()
        latin = self._read_plain_string()
        # JavaScript slices by UTF-16 code units: keep the non-Latin string as UTF-16
        self._bundle = [two_byte.encode("utf-16-le", "surrogatepass"), latin, 0, 0, self._pos]
        self._pos = value_position
        return self._read()

    def _read_plain_string(self) -> str:
        data = self._data
        pos = self._pos
        token = data[pos]
        if 0xA0 <= token < 0xC0:
            return self._read_str(pos + 1, token - 0xA0)
        if token == 0xD9:
            return self._read_str(pos + 2, data[pos + 1])
        if token == 0xDA:
            return self._read_str(pos + 3, _U16(data, pos + 1)[0])
        if token == 0xDB:
            return self._read_str(pos + 5, _U32(data, pos + 1)[0])
        raise DecodeError("bundled strings: expected a string")

    def _read_bundled_string(self) -> str:
        bundle = self._bundle
        if bundle is None:
            raise DecodeError("MessagePack 0xc1 ('never used') outside bundled strings")
        length = self._read()
        if not isinstance(length, int):
            raise DecodeError("bundled string reference without a length")
        if length > 0:
            start = bundle[3]
            bundle[3] = start + length
            return str(bundle[1][start : start + length])
        start = bundle[2]
        bundle[2] = start - length
        return str(bundle[0][start * 2 : (start - length) * 2].decode("utf-16-le", "surrogatepass"))


def _timestamp(data: bytes, start: int, length: int) -> Any:
    """msgpack timestamp extension (-1) -> timezone-aware UTC datetime."""
    if length == 4:
        seconds = _U32(data, start)[0]
        nanoseconds = 0
    elif length == 8:
        high, low = _TS64(data, start)
        nanoseconds = high >> 2
        seconds = ((high & 0x3) << 32) | low
    elif length == 12:
        nanoseconds, seconds = _TS96(data, start)
    else:
        # msgpackr writes an invalid Date (NaN time) as a 1-byte payload
        return InvalidDate
    try:
        return EPOCH + timedelta(seconds=seconds, microseconds=nanoseconds // 1000)
    except OverflowError:
        raise DecodeError(
            f"date {seconds} s from 1970 is outside the years 1-9999 Python can represent"
        ) from None


def _as_key_string(key: Any) -> str:
    """Record keys are property names: msgpackr turns numbers/booleans into strings."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        return str(int(key)) if key.is_integer() else repr(key)
    if key is None:
        return "null"
    if key is Undefined:
        return "undefined"
    raise DecodeError(f"invalid property name of type {type(key).__name__} in a record")


def _hashable(key: Any) -> Any:
    """Map keys (JavaScript ``Map`` can use anything) made usable as ``dict`` keys."""
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    if isinstance(key, dict):
        raise DecodeError("Map with an object as a key")
    if isinstance(key, set):
        return frozenset(key)
    return key


__all__ = [
    "Decoder",
    "EPOCH",
    "Structure",
    "looks_like_shared_structures",
    "shared_structures_from",
]
