"""The MXFP4 format module against the format's definition."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mxfp4_plugin import mx
from mxfp4_testing import e2m1_decode

GRID = sorted({abs(e2m1_decode(c)) for c in range(16)})


def test_e2m1_table_matches_bit_fields():
    assert [float(v) for v in mx.e2m1_table()] == [e2m1_decode(c) for c in range(16)]
    assert math.copysign(1.0, float(mx.e2m1_table()[8])) == -1.0  # code 8 is -0


def test_every_byte_unpacks_to_its_two_codes():
    packed = torch.arange(256, dtype=torch.uint8)
    codes = mx.unpack(packed)
    assert codes.shape == (512,)
    for byte in range(256):
        assert (int(codes[2 * byte]), int(codes[2 * byte + 1])) == (byte & 0xF, byte >> 4)
    # and as values: 16 rows of 16 bytes = one 32-element block each, scale 1.0
    values = mx.dequantize(packed.view(16, 16), torch.full((16, 1), 127, dtype=torch.uint8))
    for byte in range(256):
        row, col = divmod(byte, 16)
        assert float(values[row, 2 * col]) == e2m1_decode(byte & 0xF)
        assert float(values[row, 2 * col + 1]) == e2m1_decode(byte >> 4)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 15), min_size=2, max_size=256).filter(lambda v: len(v) % 2 == 0))
def test_pack_unpack_round_trip(codes):
    t = torch.tensor(codes, dtype=torch.uint8)
    assert torch.equal(mx.unpack(mx.pack(t)), t)


def test_scale_values_and_nan():
    s = torch.tensor([0, 1, 126, 127, 128, 254, 255], dtype=torch.uint8)
    v = mx.scale_values(s)
    assert v[:6].tolist() == [2.0**-127, 2.0**-126, 0.5, 1.0, 2.0, 2.0**127]
    assert math.isnan(float(v[6]))  # documented: byte 255 is NaN


def test_dequantize_nan_scale_is_documented_nan_and_validate_rejects_it():
    blocks = torch.full((2, 16), 0x22, dtype=torch.uint8)
    scales = torch.tensor([[127], [255]], dtype=torch.uint8)
    out = mx.dequantize(blocks, scales)
    assert torch.all(out[0] == 1.0) and torch.all(torch.isnan(out[1]))
    with pytest.raises(ValueError, match="w13 scales: contains the E8M0 NaN byte 255"):
        mx.validate(blocks, scales, name="w13")


@pytest.mark.parametrize("rule", mx.SCALE_RULES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_representable_values_round_trip_exactly(rule, dtype, gen):
    # Blocks whose largest magnitude is 4 or 6 (times a power of two) are exact under both rules
    # (round_up only moves the scale when amax/2**floor(log2 amax) is in (1.5, 2)).
    codes = torch.randint(0, 16, (64, 128), dtype=torch.uint8, generator=gen)
    codes[:, ::32] = torch.where(torch.rand(64, 4, generator=gen) < 0.5, 6, 7).to(torch.uint8)  # amax 4 or 6
    exps = torch.randint(-20, 20, (64, 4), generator=gen)
    values = mx.e2m1_table()[codes.long()] * torch.ldexp(torch.ones(64, 4), exps).repeat_interleave(32, 1)
    blocks, scales = mx.quantize(values.to(dtype), rule=rule)
    assert torch.equal(mx.dequantize(blocks, scales, dtype), values.to(dtype))


@pytest.mark.parametrize("rule", mx.SCALE_RULES)
def test_quantize_error_within_format_bound(rule, gen):
    x = torch.randn(256, 96, generator=gen) * torch.exp(torch.randn(256, 1, generator=gen) * 3)
    blocks, scales = mx.quantize(x, rule=rule)
    q = mx.dequantize(blocks, scales)
    xb, qb = x.view(256, 3, 32), q.view(256, 3, 32)
    step = mx.scale_values(scales).unsqueeze(-1)  # 2**X
    err = (xb - qb).abs()
    if rule == "round_up":
        # nothing clips: the error is at most half the grid spacing at that magnitude (1 * 2**X above 4)
        assert torch.all(err <= step * 1.0 + 1e-30)
        assert torch.all(xb.abs().amax(-1) <= 6 * step.squeeze(-1))
    else:
        # OCP: values up to 8 * 2**X may clip to 6 * 2**X, so the error is at most 2 * 2**X
        assert torch.all(err <= step * 2.0 + 1e-30)
    # relative to the block's largest magnitude the error stays small
    assert float((err.amax(-1) / xb.abs().amax(-1)).max()) <= 0.25 + 1e-6


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=32, max_size=32),
       st.sampled_from(mx.SCALE_RULES))
def test_quantize_is_nearest_with_ties_to_even(values, rule):
    x = torch.tensor(values, dtype=torch.float32).view(1, 32)
    blocks, scales = mx.quantize(x, rule=rule)
    scale = float(mx.scale_values(scales)[0, 0])
    amax = float(x.abs().max())
    if amax > 0:
        expected_exp = math.floor(math.log2(amax)) - 2 if rule == "ocp" else math.ceil(math.log2(amax / 6))
        assert scale == pytest.approx(2.0 ** max(expected_exp, -127), rel=0, abs=0)
    q = mx.dequantize(blocks, scales)[0]
    for xi, qi in zip(x[0].tolist(), q.tolist()):
        r = abs(xi) / scale
        cands = sorted(GRID, key=lambda g: (abs(g - min(r, 6.0)), GRID.index(g) % 2))
        assert abs(qi) == cands[0] * scale
        if qi != 0:
            assert math.copysign(1, qi) == math.copysign(1, xi)


def test_rules_differ_exactly_where_documented():
    # ENGINE_NOTES 1.4: amax 7 -> ocp X=0 clips to 6, round_up X=1 gives 8
    x = torch.zeros(1, 32)
    x[0, 0] = 7.0
    for rule, expected in (("ocp", 6.0), ("round_up", 8.0)):
        b, s = mx.quantize(x, rule=rule)
        assert float(mx.dequantize(b, s)[0, 0]) == expected


def test_quantize_rejects_bad_input():
    with pytest.raises(ValueError, match="x: contains NaN or Inf"):
        mx.quantize(torch.tensor([[float("inf")] + [0.0] * 31]))
    with pytest.raises(ValueError, match="x: contains NaN or Inf"):
        mx.quantize(torch.full((1, 32), float("nan")))
    with pytest.raises(ValueError, match="multiple of 32, got shape \\(2, 33\\)"):
        mx.quantize(torch.ones(2, 33))
    with pytest.raises(TypeError, match="x: expected a floating-point tensor, got dtype torch.int32"):
        mx.quantize(torch.ones(2, 32, dtype=torch.int32))
    with pytest.raises(ValueError, match="rule: expected one of"):
        mx.quantize(torch.ones(1, 32), rule="nearest")


def test_shape_and_dtype_errors_name_the_tensor():
    with pytest.raises(TypeError, match="blocks: expected dtype torch.uint8, got torch.int8"):
        mx.unpack(torch.zeros(4, dtype=torch.int8))
    with pytest.raises(ValueError, match=r"blocks \(2, 16\) and scales \(2, 2\) do not match"):
        mx.dequantize(torch.zeros(2, 16, dtype=torch.uint8), torch.zeros(2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="w2: expected 64 elements along the reduction axis"):
        mx.validate(torch.zeros(2, 16, dtype=torch.uint8), torch.zeros(2, 1, dtype=torch.uint8), name="w2",
                    reduction_size=64)
    with pytest.raises(ValueError, match="codes: last dimension must be even"):
        mx.pack(torch.zeros(3, dtype=torch.uint8))


def test_dequantize_to_other_dtypes(gen):
    blocks = torch.randint(0, 256, (8, 64), dtype=torch.uint8, generator=gen)
    scales = torch.randint(120, 130, (8, 4), dtype=torch.uint8, generator=gen)
    ref = mx.dequantize(blocks, scales, torch.float32)
    for dtype in (torch.bfloat16, torch.float16, torch.float64):
        assert torch.equal(mx.dequantize(blocks, scales, dtype).float(), ref)
