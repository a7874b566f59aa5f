"""Write a safetensors file one tensor at a time, so memory stays near one tensor.

The format is an 8-byte little-endian header length, a JSON header giving each tensor's
dtype, shape and byte range, then the raw bytes. Every shape is known before any data is
read, so the header is written first and the tensors streamed after it, in header order.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch

DTYPE_NAMES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


class StreamingWriter:
    def __init__(self, path: str | Path, entries: Sequence[tuple[str, torch.dtype, tuple[int, ...]]],
                 metadata: Mapping[str, str] | None = None) -> None:
        header: dict = {"__metadata__": dict(metadata)} if metadata else {}
        offset = 0
        self._expected: list[tuple[str, torch.dtype, tuple[int, ...]]] = []
        for name, dtype, shape in entries:
            if dtype not in DTYPE_NAMES:
                raise ValueError(f"{name}: dtype {dtype} cannot be written to safetensors here")
            size = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
            header[name] = {"dtype": DTYPE_NAMES[dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
            offset += size
            self._expected.append((name, dtype, tuple(shape)))
        blob = json.dumps(header, separators=(",", ":")).encode()
        blob += b" " * (-len(blob) % 8)  # the data starts 8-byte aligned
        self._file = open(path, "wb")
        self._file.write(struct.pack("<Q", len(blob)) + blob)
        self._next = 0

    def write(self, name: str, tensor: torch.Tensor) -> None:
        """Append the next tensor; name, dtype and shape must be those announced, in order."""
        self.write_parts(name, [tensor])

    def write_parts(self, name: str, parts: Iterable[torch.Tensor]) -> None:
        """Append the next tensor as consecutive slices along its first dimension, each
        written as soon as it is produced."""
        expected = self._expected[self._next] if self._next < len(self._expected) else None
        if expected is None or expected[0] != name:
            raise ValueError(f"{name}: expected next {expected and expected[0]!r}, got {name!r}")
        rows = 0
        for part in parts:
            if part.dtype != expected[1] or tuple(part.shape[1:]) != expected[2][1:]:
                raise ValueError(f"{name}: expected parts of {expected[1]} [*, {list(expected[2][1:])}], "
                                 f"got {part.dtype} {list(part.shape)}")
            self._file.write(part.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
            rows += part.shape[0]
        if rows != expected[2][0]:
            raise ValueError(f"{name}: expected {expected[2][0]} rows in all, got {rows}")
        self._next += 1

    def close(self) -> None:
        self._file.close()
        if self._next != len(self._expected):
            missing = [n for n, _, _ in self._expected[self._next:]]
            raise ValueError(f"safetensors file closed with tensors never written: {missing}")

    def __enter__(self) -> "StreamingWriter":
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._file.close()
