"""How the kernels want the expert weights in memory, and the one-time conversion to it.

Two layouts of the E2M1 codes, both described by ``ValueLayout``; both keep the checkpoint's
shape ``[E, N, K/2]`` (one byte per two codes) and its scales ``[E, N, K/32]`` unchanged:

* K is cut into chunks of ``CHUNK`` = 64 elements. Byte ``j`` (0..31) of a chunk holds
  element ``j`` in its low nibble and element ``j + 32`` in its high nibble, so the two
  nibbles of a byte belong to the two 32-element scale blocks of the chunk, and the kernel
  multiplies the low nibbles with 32 *contiguous* activations and the high nibbles with the
  next 32: no interleaving in registers, contiguous activation loads.
* ``ValueLayout.NIBBLES``: just that (decoded in the kernel with shifts and masks).
* ``ValueLayout.BF16X2``: additionally, the 32 bits of every 4 bytes are permuted so that
  four shift-and-mask operations each yield two bf16 values whose exponent is 126 short
  (see ``BF16X2_SLOTS``); one packed multiply by 2**126 finishes them. The kernel does this
  with inline PTX on the GPU.

K is padded with zero codes (scale byte 127) to a multiple of ``CHUNK``; N is never padded.
The fused gate/up weight is stored with all gate rows first, then all up rows.
"""

from __future__ import annotations

import enum

import torch

from mxfp4_plugin import mx

#: Elements of K per chunk: the low nibbles of a chunk's 32 bytes are its first 32 elements.
CHUNK = 64


class ValueLayout(str, enum.Enum):
    NIBBLES = "nibbles"
    BF16X2 = "bf16x2"


#: BF16X2 word layout. Byte b (0..3) of a 4-byte word holds a low code ``lo[b]`` and a high
#: code ``hi[b]``; each code's sign bit and 3 exponent/mantissa bits go to these bit
#: positions of the little-endian 32-bit word: (sign, e1, e0, m). The kernel then computes
#:   r0 = w & M, r1 = (w << 3) & M, r2 = (w << 6) & M,
#:   r3 = ((w << 1) & 0x80008000) | ((w >> 3) & 0x01800180) | ((w >> 7) & 0x00400040)
#: with M = 0x81C081C0, giving bf16 pairs (lo0, lo1), (lo2, lo3), (hi0, hi1), (hi2, hi3).
BF16X2_SLOTS = {
    ("lo", 0): (15, 8, 7, 6), ("lo", 1): (31, 24, 23, 22),
    ("lo", 2): (12, 5, 4, 3), ("lo", 3): (28, 21, 20, 19),
    ("hi", 0): (9, 2, 1, 0), ("hi", 1): (25, 18, 17, 16),
    ("hi", 2): (14, 11, 10, 13), ("hi", 3): (30, 27, 26, 29),
}


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def concatenate_gate_up(t: torch.Tensor, interleaved: bool) -> torch.Tensor:
    """Rows ``[E, 2I, ...]`` in the checkpoint's gate/up order -> all gate rows, then all up rows."""
    if not interleaved:
        return t.contiguous()
    return torch.cat((t[:, 0::2], t[:, 1::2]), dim=1).contiguous()


def to_kernel_layout(blocks: torch.Tensor, scales: torch.Tensor, layout: ValueLayout
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical MXFP4 ``(blocks [E, N, K/2], scales [E, N, K/32])`` -> the kernel's layout,
    K padded to a multiple of ``CHUNK``. Exact: only the positions of the bits change.
    Converts one expert at a time, so the temporaries stay the size of one expert."""
    k = blocks.shape[-1] * 2
    k_pad = round_up(k, CHUNK)
    if k_pad != k:
        scales = torch.nn.functional.pad(scales, (0, (k_pad - k) // mx.BLOCK_SIZE), value=mx.E8M0_BIAS)
    out = torch.empty((*blocks.shape[:-1], k_pad // 2), dtype=torch.uint8, device=blocks.device)
    for e in range(blocks.shape[0]):
        codes = torch.nn.functional.pad(mx.unpack(blocks[e]), (0, k_pad - k))
        chunks = codes.unflatten(-1, (-1, 2, CHUNK // 2))
        lo, hi = chunks[..., 0, :].flatten(-2), chunks[..., 1, :].flatten(-2)
        out[e] = lo | (hi << 4) if layout is ValueLayout.NIBBLES else _bf16x2_words(lo, hi)
    return out, scales.contiguous()


def _bf16x2_words(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Codes ``[..., B]`` (B a multiple of 4) -> bytes ``[..., B]`` in the BF16X2 bit order."""
    lo4 = lo.unflatten(-1, (-1, 4)).to(torch.int32)
    hi4 = hi.unflatten(-1, (-1, 4)).to(torch.int32)
    word = torch.zeros(lo4.shape[:-1], dtype=torch.int32, device=lo.device)  # bit 31 is the sign: fine
    for (half, b), positions in BF16X2_SLOTS.items():
        code = (lo4 if half == "lo" else hi4)[..., b]
        for bit, pos in zip((3, 2, 1, 0), positions):  # sign, e1, e0, m
            word |= ((code >> bit) & 1) << pos
    out = torch.stack([(word >> (8 * b)) & 0xFF for b in range(4)], dim=-1)
    return out.flatten(-2).to(torch.uint8)


def bf16x2_decode_reference(packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What the kernel's BF16X2 decode yields, in PyTorch: bytes ``[..., B]`` -> float32 values
    ``(lo, hi)``, each ``[..., B]``, before the block scale. Used by tests to check that the
    word layout above and the extraction the kernel performs agree."""
    w = packed.unflatten(-1, (-1, 4)).to(torch.int64)
    word = w[..., 0] | (w[..., 1] << 8) | (w[..., 2] << 16) | (w[..., 3] << 24)
    mask = 0x81C081C0
    regs = [word & mask, (word << 3) & mask, (word << 6) & mask,
            ((word << 1) & 0x80008000) | ((word >> 3) & 0x01800180) | ((word >> 7) & 0x00400040)]

    def halves(r):
        pair = torch.stack(((r & 0xFFFF), (r >> 16) & 0xFFFF), dim=-1)
        bits = (pair << 16).to(torch.int32)  # bf16 bits in the top half of a float32
        return bits.view(torch.float32) * 2.0 ** 126

    lo = torch.cat((halves(regs[0]), halves(regs[1])), dim=-1).flatten(-2)
    hi = torch.cat((halves(regs[2]), halves(regs[3])), dim=-1).flatten(-2)
    return lo, hi
