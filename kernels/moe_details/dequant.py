"""In-kernel MXFP4 decoding (Triton device functions), for the layouts in ``layout.py``.

``decode_tile`` takes one ``[BLOCK_N, BLOCK_K]`` tile of one expert's weight as
``BLOCK_K // 8`` 32-bit words per row plus its block scales' factors (``block_scales``) and returns it decoded, block
scale applied, in K order and ``DOT_DTYPE``. Every step is elementwise on words (no assumption about which
thread holds which element), then the eight values of each word are put in K order with
``join``/``permute``/``reshape``. Nothing larger than the tile is ever materialised.

* NIBBLES: each code to a float16 bit pattern (code 1, 0.5, is a float16 subnormal that the
  conversion to float32 keeps exactly), times 2**14 and the scale in float32.
* BF16X2: inline PTX per word: shifts and masks give four bf16 pairs short of 2**126, two packed
  multiplies (by 2**126, by the scale ``byte << 7`` in both halves) finish them. Exact: an
  E2M1 value times a power of two has at most two significant bits. ``fma.rn.bf16x2``
  needs sm_80 or newer.

Folding (``FOLD``): ``2**126 * 2**(byte - 127)`` is a normal bf16 for bytes 1..128 (block
scales up to 2; trained layers' are far smaller), so a tensor whose scale bytes all lie there
is decoded with one packed multiply per pair; others keep the two (``FOLD_RANGE``).

Scale byte 0 (2**-127) decodes as 0 (products below the normal range); byte 255 (NaN) is
rejected by ``mx.validate`` when the weights are prepared.
"""

from __future__ import annotations

import triton
import triton.language as tl

NIBBLES: tl.constexpr = tl.constexpr(0)
BF16X2: tl.constexpr = tl.constexpr(1)
FOLD_RANGE = (1, 128)  # scale bytes for which 2**126 * scale is a normal bf16 (and byte 0 stays 0)


@triton.jit
def _e2m1_to_f32(code):
    """int32 codes 0..15 -> float32 values, exact."""
    bits = ((code & 8) << 12) | ((code & 7) << 9)  # float16: sign, 2 exponent bits, 1 mantissa bit
    return bits.to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32) * 16384.0


# Bits of E2M1 element pair j of a BF16X2 word, moved into bf16 sign/exponent/mantissa position
# in `t` (pairs 0 and 1 by a shift and a mask; pairs 2 and 3 take their sign bits and their
# exponent/mantissa bits with two shifts: layout.BF16X2_SLOTS says why).
_PAIR_BITS = (
    "and.b32 t, $4, 0x81c081c0;",
    "shl.b32 t, $4, 3; and.b32 t, t, 0x81c081c0;",
    "shl.b32 t, $4, 1; and.b32 t, t, 0x80008000; shr.b32 u, $4, 3; and.b32 u, u, 0x01c001c0; or.b32 t, t, u;",
    "shl.b32 t, $4, 2; and.b32 t, t, 0x80008000; shl.b32 u, $4, 6; and.b32 u, u, 0x01c001c0; or.b32 t, t, u;",
)


def _decode_ptx(fold: bool) -> str:
    """The PTX of ``_bf16x2_decode``: per pair, its bits, then times 2**126 (the exponent bias
    between E2M1 and bf16; 0x7e80 in bf16) unless the scale already carries it, then times the
    block scale. ``nz`` (-0) as the addend makes each fma a plain rounded multiply."""
    regs = "t, u, nz" if fold else "t, u, bias, nz"
    lines = [f".reg .b32 {regs};"] + ([] if fold else ["mov.b32 bias, 0x7e807e80;"]) + ["mov.b32 nz, 0x80008000;"]
    for j, bits in enumerate(_PAIR_BITS):
        lines.append(bits)
        if not fold:
            lines.append("fma.rn.bf16x2 t, t, bias, nz;")
        lines.append(f"fma.rn.bf16x2 ${j}, t, $5, nz;")
    return "{\n" + "\n".join(lines) + "\n}"


_DECODE_PTX_FOLDED: tl.constexpr = tl.constexpr(_decode_ptx(fold=True))
_DECODE_PTX: tl.constexpr = tl.constexpr(_decode_ptx(fold=False))


@triton.jit
def _run_decode_ptx(words, scale_pairs, PTX: tl.constexpr):
    return tl.inline_asm_elementwise(PTX, constraints="=r,=r,=r,=r,r,r", args=[words, scale_pairs],
                                     dtype=(tl.int32, tl.int32, tl.int32, tl.int32), is_pure=True, pack=1)


@triton.jit
def _bf16x2_decode(words, scale_pairs, FOLD: tl.constexpr):
    """int32 words (BF16X2 layout) and their block scales as bf16 pairs -> 4 int32 words of
    bf16 pairs: elements (0, 1), (2, 3), (4, 5), (6, 7) of each word. ``FOLD``: the scale pairs
    already carry the 2**126 (one packed multiply per pair instead of two)."""
    if FOLD:
        return _run_decode_ptx(words, scale_pairs, _DECODE_PTX_FOLDED)
    else:
        return _run_decode_ptx(words, scale_pairs, _DECODE_PTX)


@triton.jit
def _low(pair):
    return pair.to(tl.int16).to(tl.bfloat16, bitcast=True)


@triton.jit
def _high(pair):
    return (pair >> 16).to(tl.int16).to(tl.bfloat16, bitcast=True)


@triton.jit
def _in_k_order(v00, v01, v10, v11, v20, v21, v30, v31, BLOCK_N: tl.constexpr, WORDS: tl.constexpr):
    """Eight ``[BLOCK_N, WORDS]`` tensors, ``vRH`` = element ``8q + 2R + H`` of word q ->
    ``[BLOCK_N, 8 * WORDS]`` in K order."""
    lo = tl.join(tl.join(v00, v01), tl.join(v10, v11))  # [N, W, h, R in 0..1]
    hi = tl.join(tl.join(v20, v21), tl.join(v30, v31))  # [N, W, h, R in 2..3]
    both = tl.permute(tl.join(lo, hi), (0, 1, 4, 3, 2))  # [N, W, R // 2, R % 2, h]
    return tl.reshape(both, (BLOCK_N, 8 * WORDS))


@triton.jit
def _in_fragment_order(v00, v01, v10, v11, v20, v21, v30, v31, BLOCK_N: tl.constexpr, WORDS: tl.constexpr):
    """BF16X2 words: word ``4G + t`` holds elements ``32G + 16(R // 2) + 8(R % 2) + 2t + h`` at
    ``vRH``: the (k, k+1), (k+8, k+9) pairs an MMA fragment thread holds, for two K blocks of 16.
    -> ``[BLOCK_N, 8 * WORDS]`` in K order."""
    G: tl.constexpr = WORDS // 4
    lo = tl.join(tl.join(v00, v01), tl.join(v10, v11))  # [N, W, h, R % 2] for R // 2 = 0
    hi = tl.join(tl.join(v20, v21), tl.join(v30, v31))
    both = tl.reshape(tl.join(lo, hi), (BLOCK_N, G, 4, 2, 2, 2))  # [N, G, t, h, R % 2, R // 2]
    return tl.reshape(tl.permute(both, (0, 1, 5, 4, 2, 3)), (BLOCK_N, 8 * WORDS))


@triton.jit
def _per_word(s, BLOCK_N: tl.constexpr, WORDS: tl.constexpr):
    """Block scales ``[BLOCK_N, WORDS // 4]`` -> one per word ``[BLOCK_N, WORDS]``."""
    return tl.reshape(tl.broadcast_to(tl.expand_dims(s, 2), (BLOCK_N, WORDS // 4, 4)), (BLOCK_N, WORDS))


@triton.jit
def block_scales(scale_bytes, LAYOUT: tl.constexpr, FOLD: tl.constexpr = False):
    """Block scale bytes (uint8, any shape) -> the factors ``decode_tile`` multiplies by: BF16X2, the
    bf16 pair ``(2**126 *) scale`` in both halves of an int32 (``FOLD``: exponent field ``byte + 126``);
    NIBBLES, the float32 scale."""
    scale = scale_bytes.to(tl.int32)
    if LAYOUT == BF16X2:
        scale += 126 if FOLD else 0
        return (scale << 7) | (scale << 23)
    else:
        return (scale << 23).to(tl.float32, bitcast=True)


@triton.jit
def decode_tile(words, scales, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, LAYOUT: tl.constexpr,
                DOT_DTYPE: tl.constexpr, FOLD: tl.constexpr = False):
    """``words [BLOCK_N, BLOCK_K // 8]`` (int32) and their block scales' factors ``[BLOCK_N, BLOCK_K // 32]``
    (``block_scales``) -> the decoded tile ``[BLOCK_N, BLOCK_K]`` in K order, in ``DOT_DTYPE``.
    ``FOLD`` (BF16X2 only; every scale byte of the tensor in ``FOLD_RANGE``): the bf16 factor
    ``2**126 * scale`` replaces the two multiplies by one."""
    WORDS: tl.constexpr = BLOCK_K // 8
    # each block scale is shared by its block's 4 words
    if LAYOUT == BF16X2:
        r0, r1, r2, r3 = _bf16x2_decode(words, _per_word(scales, BLOCK_N, WORDS), FOLD)
        tile = _in_fragment_order(_low(r0), _high(r0), _low(r1), _high(r1), _low(r2), _high(r2), _low(r3),
                                  _high(r3), BLOCK_N, WORDS)
    else:
        f = _per_word(scales, BLOCK_N, WORDS)
        tile = _in_k_order(_e2m1_to_f32(words & 15) * f, _e2m1_to_f32((words >> 4) & 15) * f,
                           _e2m1_to_f32((words >> 8) & 15) * f, _e2m1_to_f32((words >> 12) & 15) * f,
                           _e2m1_to_f32((words >> 16) & 15) * f, _e2m1_to_f32((words >> 20) & 15) * f,
                           _e2m1_to_f32((words >> 24) & 15) * f, _e2m1_to_f32((words >> 28) & 15) * f,
                           BLOCK_N, WORDS)
    return tile.to(DOT_DTYPE)
