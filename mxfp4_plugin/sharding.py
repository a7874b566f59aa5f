"""Tensor-parallel slicing of MXFP4 experts in whole 32-element blocks.

vLLM's and SGLang's gpt-oss loaders share this rule (ENGINE_NOTES 2.4): each rank takes
``ceil((I/32) / tp) * 32`` intermediate columns, the last rank what is left, so a rank may
hold fewer than it allocates; the tail stays zero, which contributes exactly nothing.
"""

from __future__ import annotations

from .mx import BLOCK_SIZE


def intermediate_per_rank(intermediate_size: int, tp_size: int) -> int:
    """What each rank allocates: ``ceil(I/32 / tp) * 32``."""
    if intermediate_size % BLOCK_SIZE:
        raise ValueError(f"intermediate_size: must be a multiple of {BLOCK_SIZE}, got {intermediate_size}")
    if tp_size < 1:
        raise ValueError(f"tp_size: expected a positive integer, got {tp_size}")
    return -(-(intermediate_size // BLOCK_SIZE) // tp_size) * BLOCK_SIZE


def intermediate_slice(intermediate_size: int, tp_rank: int, tp_size: int) -> slice:
    """The intermediate columns ``[start, stop)`` this rank holds (may be empty)."""
    if not 0 <= tp_rank < tp_size:
        raise ValueError(f"tp_rank: expected 0 <= tp_rank < {tp_size}, got {tp_rank}")
    per_rank = intermediate_per_rank(intermediate_size, tp_size)
    start = min(tp_rank * per_rank, intermediate_size)
    return slice(start, min(start + per_rank, intermediate_size))
