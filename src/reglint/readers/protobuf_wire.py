"""The protobuf wire format, read without protobuf's runtime: enough for
SavedModel's ``keras_metadata.pb``, ``saved_model.pb`` object graph and
``variables.index`` entries (untrusted bytes: every length is checked)."""

from __future__ import annotations

from reglint.errors import ModelReadError


def varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ModelReadError("truncated protobuf varint")
        byte = buf[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, i


def fields(buf: bytes):
    """(field number, wire type, value) of a serialized message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 2:
            length, i = varint(buf, i)
            if i + length > len(buf):
                raise ModelReadError("truncated protobuf field")
            value, i = buf[i:i + length], i + length
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        else:
            raise ModelReadError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value
