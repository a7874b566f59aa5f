"""In-kernel MXFP4 decoding (Triton device functions), for the layouts in ``layout.py``.

``load_weight_tile`` reads one ``[BLOCK_N, BLOCK_K]`` tile of one expert's weight as two
``[BLOCK_N, BLOCK_K // 2]`` operands: the low nibbles (elements ``64c + j``) and the high
nibbles (elements ``64c + 32 + j``) of each 64-element chunk ``c``, block scale applied, in
``dot_dtype``. Nothing larger than the tile is ever materialised.

* NIBBLES: codes to float16 bit patterns (a float16 subnormal for code 1, converted exactly),
  to float32, times 2**14 and the scale. Runs under the Triton interpreter.
* BF16X2: inline PTX turns 4 bytes into 8 bf16 values with 4 shift/mask steps and 4 packed
  multiplies (``layout.BF16X2_SLOTS``), then one bf16 multiply by the scale (``byte << 7``
  as bf16 bits). Exact: an E2M1 value times a power of two has at most two significant bits.
  GPU only (``fma.rn.bf16x2``: sm_80 and newer).

Scale byte 0 (2**-127) decodes as 0 in both paths (its products are below float32's and
bfloat16's normal range); byte 255 (NaN) is rejected by ``mx.validate`` when loading.
"""

from __future__ import annotations

import triton
import triton.language as tl

NIBBLES: tl.constexpr = tl.constexpr(0)
BF16X2: tl.constexpr = tl.constexpr(1)


@triton.jit
def _e2m1_nibbles_to_f32(code):
    """int32 codes 0..15 -> float32 values, exact."""
    bits = ((code & 8) << 12) | ((code & 7) << 9)  # float16: sign, 2 exponent bits, 1 mantissa bit
    return bits.to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32) * 16384.0


@triton.jit
def _bf16x2_unpack(packed):
    """uint8 bytes in the BF16X2 layout -> (low values, high values) in bf16, same shape."""
    return tl.inline_asm_elementwise(
        r"""
        {
            .reg .b32 t, u, bias, nz;
            mov.b32 bias, 0x7e807e80;
            mov.b32 nz, 0x80008000;
            and.b32 $0, $4, 0x81c081c0;
            fma.rn.bf16x2 $0, $0, bias, nz;
            shl.b32 t, $4, 3;
            and.b32 $1, t, 0x81c081c0;
            fma.rn.bf16x2 $1, $1, bias, nz;
            shl.b32 t, $4, 6;
            and.b32 $2, t, 0x81c081c0;
            fma.rn.bf16x2 $2, $2, bias, nz;
            shl.b32 t, $4, 1;
            and.b32 $3, t, 0x80008000;
            shr.b32 t, $4, 3;
            and.b32 u, t, 0x01800180;
            or.b32 $3, $3, u;
            shr.b32 t, $4, 7;
            and.b32 u, t, 0x00400040;
            or.b32 $3, $3, u;
            fma.rn.bf16x2 $3, $3, bias, nz;
        }
        """,
        constraints="=r,=r,=r,=r,r",
        args=[packed],
        dtype=(tl.bfloat16, tl.bfloat16),
        is_pure=True,
        pack=4,
    )


@triton.jit
def _broadcast_scale(s, BLOCK_N: tl.constexpr, KB: tl.constexpr):
    """[BLOCK_N, KB // 32] -> [BLOCK_N, KB]: each block scale over its 32 nibbles."""
    s = tl.broadcast_to(tl.expand_dims(s, 2), (BLOCK_N, KB // 32, 32))
    return tl.reshape(s, (BLOCK_N, KB))


@triton.jit
def load_weight_tile(w_ptrs, s_ptrs, mask_n, mask_k, mask_c,
                     BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, LAYOUT: tl.constexpr,
                     DOT_DTYPE: tl.constexpr):
    """``w_ptrs [BLOCK_N, BLOCK_K//2]`` byte pointers, ``s_ptrs [BLOCK_N, BLOCK_K//64]`` pointers
    to the chunks' first scale byte (the second is at +1); masks for rows, bytes and chunks.
    Returns ``(w_lo, w_hi)`` in ``DOT_DTYPE``."""
    KB: tl.constexpr = BLOCK_K // 2
    packed = tl.load(w_ptrs, mask=mask_n[:, None] & mask_k[None, :], other=0)
    smask = mask_n[:, None] & mask_c[None, :]
    s_lo = tl.load(s_ptrs, mask=smask, other=0)
    s_hi = tl.load(s_ptrs + 1, mask=smask, other=0)
    if LAYOUT == BF16X2:
        v_lo, v_hi = _bf16x2_unpack(packed)
        f_lo = (s_lo.to(tl.uint16) << 7).to(tl.bfloat16, bitcast=True)
        f_hi = (s_hi.to(tl.uint16) << 7).to(tl.bfloat16, bitcast=True)
        w_lo = v_lo * _broadcast_scale(f_lo, BLOCK_N, KB)
        w_hi = v_hi * _broadcast_scale(f_hi, BLOCK_N, KB)
    else:
        code = packed.to(tl.int32)
        f_lo = (s_lo.to(tl.int32) << 23).to(tl.float32, bitcast=True)
        f_hi = (s_hi.to(tl.int32) << 23).to(tl.float32, bitcast=True)
        w_lo = _e2m1_nibbles_to_f32(code & 15) * _broadcast_scale(f_lo, BLOCK_N, KB)
        w_hi = _e2m1_nibbles_to_f32(code >> 4) * _broadcast_scale(f_hi, BLOCK_N, KB)
    return w_lo.to(DOT_DTYPE), w_hi.to(DOT_DTYPE)
