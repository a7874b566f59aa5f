"""How the kernels want the expert weights in memory, and the one-time conversion to it.

The kernels read the codes as 32-bit words, eight codes per word, four words per 32-element
scale block. Two layouts, both with the checkpoint's shape ``[E, N, K/2]`` (uint8) and its
scales ``[E, N, K/32]`` unchanged:

* ``ValueLayout.NIBBLES``: the checkpoint's own bytes (low nibble first): word ``q`` holds
  elements ``8q .. 8q+7``. Decoded with shifts and masks; runs under the Triton interpreter.
* ``ValueLayout.BF16X2`` (GPU): within each 32-element block, word ``t`` (0..3) holds the
  elements ``2t, 2t+1, 2t+8, 2t+9, 16+2t, 17+2t, 24+2t, 25+2t``: what one thread of an MMA
  fragment holds for two K steps of 16, so the decoded values land in the registers the
  tensor cores read (no shuffle through shared memory). The bits of each word are permuted
  (``BF16X2_SLOTS``) so that shifts and masks (one or two of each per pair) yield four pairs of
  bf16 values with an exponent 126 short; packed multiplies by 2**126 and by the block scale finish them.

The codes are not padded: K only needs to be a multiple of 32 (the scale block), which every
MXFP4 tensor is. Scale rows are laid 16 bytes apart (``with_aligned_rows``; 90 -> 96 bytes for
gpt-oss), the only padding, done once. The fused gate/up weight is stored with all gate rows first, then all up rows.
"""

from __future__ import annotations

import enum

import torch

from mxfp4_plugin import mx

ELEMENTS_PER_WORD = 8


class ValueLayout(str, enum.Enum):
    NIBBLES = "nibbles"
    BF16X2 = "bf16x2"


#: BF16X2 word layout. In scale block G, element ``32G + 16(r // 2) + 8(r % 2) + 2t + h``
#: (r = 0..3, h = 0..1, t = 0..3) goes to word ``4G + t``, result register r, half h; its
#: code's (sign, e1, e0, m) bits sit at these positions of the word (little-endian 32 bits). The kernel computes, with M = 0x81C081C0,
#:   r0 = w & M, r1 = (w << 3) & M,
#:   r2 = ((w << 1) & 0x80008000) | ((w >> 3) & 0x01C001C0),
#:   r3 = ((w << 2) & 0x80008000) | ((w << 6) & 0x01C001C0),
#: each a pair (low half: h = 0) of bf16 bit patterns: sign at 15, exponent bits 8..7, mantissa
#: bit 6, i.e. the E2M1 value times 2**-126. Why these positions: the shifts and masks are integer
#: work on the ALU pipe (half rate), except left shifts, which the compiler issues as multiplies on
#: the FMA pipe. Seven ALU operations per word is the least any placement allows: the twelve
#: low-half exponent/mantissa targets 6..8 cannot all come from bits below them, so one right shift
#: is needed, and no placement serves three pairs with one shift and mask each and the fourth with
#: two, so six masks are needed too. (Measured, BENCHMARKS.md round 10: ALU pipe 2-4 points less busy
#: than with round 9's placement, which needed eight; times within run-to-run noise.)
BF16X2_SLOTS = {
    (0, 0): (15, 8, 7, 6), (0, 1): (31, 24, 23, 22),
    (1, 0): (12, 5, 4, 3), (1, 1): (28, 21, 20, 19),
    (2, 0): (14, 11, 10, 9), (2, 1): (30, 27, 26, 25),
    (3, 0): (13, 2, 1, 0), (3, 1): (29, 18, 17, 16),
}
BF16X2_MASK = 0x81C081C0


def concatenate_gate_up(t: torch.Tensor, interleaved: bool) -> torch.Tensor:
    """Rows ``[E, 2I, ...]`` in the checkpoint's gate/up order -> all gate rows, then all up rows."""
    if not interleaved:
        return t.contiguous()
    return torch.cat((t[:, 0::2], t[:, 1::2]), dim=1).contiguous()


#: bytes readable past the last block scale of a tensor from ``with_aligned_rows``: the kernels' K loop loads
#: scales without masks (``gemm.SCALES_PAST_K``), up to 2 * BLOCK_K / 32 bytes past a row's last (a last partial
#: step, then the next step's prefetch); the row's padding, the next row or this slack holds them (K steps up to 256)
SCALE_SLACK = 16


def with_aligned_rows(scales: torch.Tensor, align: int = 16) -> torch.Tensor:
    """``scales [E, N, K/32]`` as a view whose rows start every ``align`` bytes, of a buffer made once
    with zeros past K/32 and ``SCALE_SLACK`` bytes past the last row, that the kernels never use: same shape and
    values, a row stride the compiler can prove aligned. With gpt-oss's 90-byte rows (K = 2880) Triton
    otherwise picks a layout for the scales that sends every decoded weight tile through shared memory."""
    width = scales.shape[-1]
    padded = -(-width // align) * align
    rows = scales.numel() // width if width else 0
    buffer = scales.new_zeros(rows * padded + SCALE_SLACK)
    view = buffer[:rows * padded].view(*scales.shape[:-1], padded)[..., :width]
    view.copy_(scales)
    return view


def bytes_after(t: torch.Tensor) -> int:
    """How many bytes of ``t``'s storage lie past its last element."""
    last = t.storage_offset() + sum((n - 1) * st for n, st in zip(t.shape, t.stride()))
    return t.untyped_storage().nbytes() - (last + 1) * t.element_size()


def to_kernel_layout(blocks: torch.Tensor, layout: ValueLayout) -> torch.Tensor:
    """Canonical MXFP4 codes ``[E, N, K/2]`` -> the kernel's layout, same shape. Exact: only
    the positions of bits change. One expert at a time, so temporaries stay one expert's size."""
    if blocks.shape[-1] % 4:
        raise ValueError(f"blocks: K/2 must be a multiple of 4 (K a multiple of 8), got shape {tuple(blocks.shape)}")
    if layout is ValueLayout.NIBBLES:
        return blocks.contiguous()
    out = torch.empty_like(blocks, memory_format=torch.contiguous_format)
    for e in range(blocks.shape[0]):
        out[e] = _bf16x2_words(mx.unpack(blocks[e]))
    return out


def _bf16x2_words(codes: torch.Tensor) -> torch.Tensor:
    """Codes ``[..., K]`` -> bytes ``[..., K/2]`` in the BF16X2 word order and bit order."""
    c = codes.unflatten(-1, (-1, 2, 2, 4, 2))  # [..., G, r // 2, r % 2, t, h]
    c = c.permute(*range(c.dim() - 5), -5, -2, -4, -3, -1).flatten(-3, -2).flatten(-4, -3)  # [..., word, r, h]
    word = bf16x2_slot_words(c)
    out = torch.stack([(word >> (8 * b)) & 0xFF for b in range(4)], dim=-1)
    return out.flatten(-2).to(torch.uint8)


def bf16x2_slot_words(codes: torch.Tensor) -> torch.Tensor:
    """Codes ``[..., word, r, h]`` (0..15; r = result register 0..3, h = half) -> int32 words with
    each code's bits at ``BF16X2_SLOTS[(r, h)]`` (bit 31 lands in the sign bit)."""
    c = codes.to(torch.int32)
    word = torch.zeros(c.shape[:-2], dtype=torch.int32, device=codes.device)
    for (r, h), positions in BF16X2_SLOTS.items():
        code = c[..., r, h]
        for bit, pos in zip((3, 2, 1, 0), positions):  # sign, e1, e0, m
            word |= ((code >> bit) & 1) << pos
    return word


def bf16x2_decode_reference(packed: torch.Tensor) -> torch.Tensor:
    """What the kernel's BF16X2 decode yields, in PyTorch: bytes ``[..., K/2]`` -> float32
    values ``[..., K]`` in K order, before the block scale. Tests use it to check that the word
    layout above and the extraction and reordering the kernel performs agree."""
    w = packed.unflatten(-1, (-1, 4)).to(torch.int64)
    word = w[..., 0] | (w[..., 1] << 8) | (w[..., 2] << 16) | (w[..., 3] << 24)
    m = BF16X2_MASK
    regs = [word & m, (word << 3) & m, ((word << 1) & 0x80008000) | ((word >> 3) & 0x01C001C0),
            ((word << 2) & 0x80008000) | ((word << 6) & 0x01C001C0)]
    halves = [torch.stack(((r & 0xFFFF), (r >> 16) & 0xFFFF), dim=-1) for r in regs]  # [..., word, h]
    bits = (torch.stack(halves, dim=-2) << 16).to(torch.int32)  # [..., word, r, h]; bf16 bits as float32
    values = (bits.view(torch.float32) * 2.0**126).unflatten(-3, (-1, 4)).unflatten(-2, (2, 2))
    # [..., G, t, r // 2, r % 2, h] -> K order [..., G, r // 2, r % 2, t, h]
    return values.permute(*range(values.dim() - 5), -5, -3, -2, -4, -1).flatten(-5)
