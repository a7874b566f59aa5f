"""The MXFP4 format, in one place (OCP Microscaling v1.0).

* Element: E2M1 (1 sign, 2 exponent, 1 mantissa bit), 16 codes, no Inf/NaN, max 6.
* Scale: E8M0, one unsigned byte per block, value 2**(byte - 127); 255 is NaN.
* Block: 32 consecutive elements along the reduction axis (the last axis here).
* Packing: two codes per byte, the low nibble holds the even (first) element.

A tensor of K elements along its last axis is stored as ``blocks`` (uint8, ``[..., K/2]``)
and ``scales`` (uint8, ``[..., K/32]``). Every other module uses these functions; none
re-implements the format.

Documented NaN: ``dequantize`` turns a block whose scale byte is 255 into NaN, as the
format says, without checking (a check would synchronise the device on every call).
``validate`` rejects such scales with an error naming the tensor: loaders call it once.
"""

from __future__ import annotations

import torch

BLOCK_SIZE = 32
E8M0_BIAS = 127
E8M0_NAN = 255
E2M1_MAX = 6.0

# Code -> value; bit 3 is the sign, so codes 8..15 mirror 0..7.
E2M1_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
               -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0)

# Midpoints between neighbouring magnitudes; a tie goes to the even code (RNE).
_E2M1_MIDPOINTS = (0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0)

#: Rules for choosing a block's scale exponent X (scale = 2**X) from its largest magnitude.
#: ``ocp``: X = floor(log2(amax)) - 2, the OCP v1.0 rule; magnitudes in (6, 8) * 2**X clip to 6.
#: ``round_up``: X = ceil(log2(amax / 6)), never clips (triton_kernels, TRT-LLM, FlashInfer).
SCALE_RULES = ("ocp", "round_up")


def e2m1_table(dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """The 16 E2M1 values indexed by code."""
    return torch.tensor(E2M1_VALUES, dtype=dtype, device=device)


def pack(codes: torch.Tensor) -> torch.Tensor:
    """Pack 4-bit codes ``[..., K]`` (uint8, values 0..15, K even) into bytes ``[..., K/2]``."""
    _expect_dtype("codes", codes, torch.uint8)
    if codes.shape[-1] % 2:
        raise ValueError(f"codes: last dimension must be even to pack two codes per byte, got shape {tuple(codes.shape)}")
    return (codes[..., 0::2] & 0x0F) | ((codes[..., 1::2] & 0x0F) << 4)


def unpack(blocks: torch.Tensor) -> torch.Tensor:
    """Unpack bytes ``[..., K/2]`` into 4-bit codes ``[..., K]``: low nibble first."""
    _expect_dtype("blocks", blocks, torch.uint8)
    return torch.stack((blocks & 0x0F, blocks >> 4), dim=-1).flatten(-2)


def scale_values(scales: torch.Tensor) -> torch.Tensor:
    """E8M0 bytes to float32 powers of two; byte 255 gives NaN (documented above)."""
    _expect_dtype("scales", scales, torch.uint8)
    exponent = scales.to(torch.int32) - E8M0_BIAS
    values = torch.ldexp(torch.ones_like(exponent, dtype=torch.float32), exponent)
    return torch.where(scales == E8M0_NAN, torch.full_like(values, float("nan")), values)


def dequantize(blocks: torch.Tensor, scales: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """MXFP4 ``(blocks [..., K/2], scales [..., K/32])`` to ``dtype`` ``[..., K]``.

    The product is formed in float32, where it is exact (E2M1 values have two significant
    bits and the scale is a power of two), then cast to ``dtype``: exact for float32 and
    bfloat16; float16 can overflow or lose tiny values, as its range is narrower.
    """
    _check_pair(blocks, scales, "blocks", "scales")
    codes = unpack(blocks).to(torch.int64)
    values = e2m1_table(device=blocks.device)[codes]
    values = values.unflatten(-1, (-1, BLOCK_SIZE)) * scale_values(scales).unsqueeze(-1)
    return values.flatten(-2).to(dtype)


def quantize(x: torch.Tensor, rule: str = "ocp") -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize ``x [..., K]`` (K a multiple of 32) along its last axis to ``(blocks, scales)``.

    ``rule`` names how a block's scale is chosen (see ``SCALE_RULES``); elements are then
    rounded to the nearest E2M1 value, ties to even, saturating at +-6. Non-finite input is
    an error: MXFP4 elements have no Inf or NaN to hold it.
    """
    if rule not in SCALE_RULES:
        raise ValueError(f"rule: expected one of {SCALE_RULES}, got {rule!r}")
    if not x.is_floating_point():
        raise TypeError(f"x: expected a floating-point tensor, got dtype {x.dtype}")
    if x.dim() == 0 or x.shape[-1] % BLOCK_SIZE:
        raise ValueError(f"x: last dimension must be a multiple of {BLOCK_SIZE}, got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError("x: contains NaN or Inf, which MXFP4 elements cannot represent")

    xb = x.to(torch.float32).contiguous().unflatten(-1, (-1, BLOCK_SIZE))
    exponent = _scale_exponent(xb.abs().amax(dim=-1), rule)
    scaled = torch.ldexp(xb, -exponent.unsqueeze(-1))
    codes = _round_to_e2m1(scaled)
    scales = (exponent + E8M0_BIAS).to(torch.uint8)
    return pack(codes.flatten(-2)), scales


def validate(blocks: torch.Tensor, scales: torch.Tensor, *, name: str, reduction_size: int | None = None) -> None:
    """Check one MXFP4 tensor pair: dtypes, matching shapes, K if given, no NaN scale."""
    _check_pair(blocks, scales, f"{name} blocks", f"{name} scales")
    k = blocks.shape[-1] * 2
    if reduction_size is not None and k != reduction_size:
        raise ValueError(f"{name}: expected {reduction_size} elements along the reduction axis "
                         f"({reduction_size // 2} bytes), got {k} (blocks shape {tuple(blocks.shape)})")
    if bool((scales == E8M0_NAN).any()):
        raise ValueError(f"{name} scales: contains the E8M0 NaN byte {E8M0_NAN}")


def _scale_exponent(amax: torch.Tensor, rule: str) -> torch.Tensor:
    """Integer block exponent, exact: derived from frexp, never from a rounded log2."""
    # amax = m * 2**e with m in [0.5, 1), so floor(log2(amax)) = e - 1.
    _, e = torch.frexp(amax)
    floor_log2 = e.to(torch.int32) - 1
    if rule == "ocp":
        exponent = floor_log2 - 2
    else:
        # ceil(log2(amax / 6)) is floor_log2 - 2 when amax <= 6 * 2**(floor_log2 - 2), else one more.
        limit = torch.ldexp(torch.full_like(amax, E2M1_MAX), floor_log2 - 2)
        exponent = floor_log2 - 2 + (amax > limit).to(torch.int32)
    # An all-zero block has amax 0 (frexp exponent 0); any scale represents it, take the smallest.
    exponent = torch.where(amax == 0, torch.full_like(exponent, -E8M0_BIAS), exponent)
    return exponent.clamp(-E8M0_BIAS, E8M0_NAN - 1 - E8M0_BIAS)


def _round_to_e2m1(scaled: torch.Tensor) -> torch.Tensor:
    """float32 -> E2M1 codes, round to nearest, ties to even code, saturating at 6."""
    magnitude = scaled.abs()
    midpoints = torch.tensor(_E2M1_MIDPOINTS, dtype=torch.float32, device=scaled.device)
    below = torch.bucketize(magnitude, midpoints, right=False)  # midpoints strictly below
    at_or_below = torch.bucketize(magnitude, midpoints, right=True)  # midpoints at or below
    # On a midpoint the two differ by one; RNE takes the even code of the two.
    index = torch.where(below % 2 == 0, below, at_or_below)
    sign = torch.signbit(scaled).to(torch.uint8) << 3
    return index.to(torch.uint8) | sign


def _check_pair(blocks: torch.Tensor, scales: torch.Tensor, blocks_name: str, scales_name: str) -> None:
    _expect_dtype(blocks_name, blocks, torch.uint8)
    _expect_dtype(scales_name, scales, torch.uint8)
    if blocks.dim() == 0 or blocks.shape[:-1] != scales.shape[:-1] or blocks.shape[-1] * 2 != scales.shape[-1] * BLOCK_SIZE:
        raise ValueError(
            f"{blocks_name} {tuple(blocks.shape)} and {scales_name} {tuple(scales.shape)} do not match: "
            f"expected blocks [..., K/2] and scales [..., K/{BLOCK_SIZE}] with the same leading dimensions")


def _expect_dtype(name: str, tensor: torch.Tensor, dtype: torch.dtype) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {tensor.dtype}")
