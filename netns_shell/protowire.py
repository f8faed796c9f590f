"""Protocol Buffers wire format, just enough for the few CRI messages netns-shell uses.

A message is encoded from `(field number, value)` pairs and decoded into
`{field number: [values]}`: varints come back as ints, length-delimited fields
as bytes (a string, a nested message or a map entry; the caller knows which).
Fixed 32/64-bit fields are skipped over.  No code generation, no `protobuf`
package: the CRI calls we make carry strings, bools, ints and nested messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "WireError",
    "decode",
    "encode",
    "first",
    "map_field",
    "text",
]

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_MAX_DEPTH = 16


class WireError(ValueError):
    """The bytes are not a well-formed protobuf message."""


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int32/int64 negatives are ten-byte two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode(fields: Iterable[tuple[int, Any]]) -> bytes:
    """Encode (number, value) pairs: bool/int as varint; str, bytes or a nested list of
    pairs as length-delimited; a dict as a map<string, string>; None is left out."""
    out = bytearray()
    for number, value in fields:
        if value is None:
            continue
        if isinstance(value, bool | int):
            out += _varint(number << 3 | _VARINT) + _varint(int(value))
            continue
        if isinstance(value, dict):
            for key, item in value.items():
                _put_len(out, number, encode([(1, key), (2, item)]))
            continue
        if isinstance(value, str):
            payload = value.encode()
        elif isinstance(value, bytes):
            payload = value
        else:
            payload = encode(value)
        _put_len(out, number, payload)
    return bytes(out)


def _put_len(out: bytearray, number: int, payload: bytes) -> None:
    out += _varint(number << 3 | _LEN) + _varint(len(payload)) + payload


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def decode(data: bytes) -> dict[int, list[Any]]:
    """{field number: [values]} of one message level (ints or bytes); raises WireError."""
    fields: dict[int, list[Any]] = {}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire == _LEN:
            size, pos = _read_varint(data, pos)
            if pos + size > len(data):
                raise WireError("length-delimited field runs past the end")
            value, pos = data[pos : pos + size], pos + size
        elif wire in (_I64, _I32):
            pos += 8 if wire == _I64 else 4
            if pos > len(data):
                raise WireError("fixed-size field runs past the end")
            continue
        else:
            raise WireError(f"unsupported wire type {wire}")
        if number == 0:
            raise WireError("field number 0")
        fields.setdefault(number, []).append(value)
    return fields


def first(fields: dict[int, list[Any]], number: int, default: Any = None) -> Any:
    """The last value of a singular field (protobuf: the last one wins), or `default`."""
    values = fields.get(number)
    return values[-1] if values else default


def text(fields: dict[int, list[Any]], number: int) -> str:
    """A string field ('' when absent); invalid UTF-8 is kept as replacement characters."""
    value = first(fields, number, b"")
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else ""


def map_field(fields: dict[int, list[Any]], number: int) -> dict[str, str]:
    """A map<string, string> field."""
    out: dict[str, str] = {}
    for entry in fields.get(number, ()):
        if isinstance(entry, bytes):
            kv = decode(entry)
            out[text(kv, 1)] = text(kv, 2)
    return out
