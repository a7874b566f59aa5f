"""The third-party backends' pure-PyTorch conversion steps, bit-exact against layouts written
out here element by element from each library's documented contract (ENGINE_NOTES 5.1-5.6).

Nothing here needs a GPU or the libraries: the libraries' own swizzles run at ``prepare``
on the GPU and are covered by tests/test_backends_gpu.py.
"""

import struct

import pytest
import torch
from mxfp4_testing import random_layer

from mxfp4_plugin.backends import flashinfer_cutlass as fic
from mxfp4_plugin.backends import flashinfer_trtllm as fit
from mxfp4_plugin.backends import marlin
from mxfp4_plugin.backends import openai_triton_kernels as tk
from mxfp4_plugin.backends.layouts import (NEUTRAL_SCALE, RowOrder, pad_dim, pad_layer, phantom_expert_ids,
                                           reorder_gate_up)
from mxfp4_plugin.spec import Activation, ActivationSpec, GateUpOrder, MoESpec
from mxfp4_plugin.weights import MoEWeights

SWIGLU = ActivationSpec(Activation.SWIGLU_OAI, alpha=1.702, limit=7.0)
SILU = ActivationSpec(Activation.SILU)
ALL_ORDERS = list(RowOrder)


def rows_of(gate, up, order):
    """Hand-written: the list of rows (each a tensor) of w13 in ``order``."""
    n = len(gate)
    if order is RowOrder.INTERLEAVED:
        return [gate[r // 2] if r % 2 == 0 else up[r // 2] for r in range(2 * n)]
    if order is RowOrder.CONCATENATED:
        return [gate[r] if r < n else up[r - n] for r in range(2 * n)]
    if order is RowOrder.UP_GATE_HALVES:
        return [up[r] if r < n else gate[r - n] for r in range(2 * n)]
    return [up[r // 2] if r % 2 == 0 else gate[r // 2] for r in range(2 * n)]


def canonical_gate_up(t, order):
    """Hand-written inverse for the two canonical orders, per expert: (gate rows, up rows)."""
    n = t.shape[0] // 2
    if order is RowOrder.INTERLEAVED:
        return [t[2 * r] for r in range(n)], [t[2 * r + 1] for r in range(n)]
    return [t[r] for r in range(n)], [t[n + r] for r in range(n)]


@pytest.mark.parametrize("source", [RowOrder.INTERLEAVED, RowOrder.CONCATENATED])
@pytest.mark.parametrize("target", ALL_ORDERS)
@pytest.mark.parametrize("shape", [(3, 8, 5), (3, 8)])
def test_gate_up_reorders(gen, source, target, shape):
    t = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
    got = reorder_gate_up(t, source, target)
    for e in range(shape[0]):
        gate, up = canonical_gate_up(t[e], source)
        assert torch.equal(got[e], torch.stack(rows_of(gate, up, target)))
    # and back again
    assert torch.equal(reorder_gate_up(got, target, source), t)


def test_reorders_match_the_engines_formulas(gen):
    w = torch.randint(0, 256, (2, 12, 4), dtype=torch.uint8, generator=gen)  # gpt-oss interleaved
    # vLLM trtllm: "swap_every_two_rows" (reshape into pairs and flip)
    swapped = w.reshape(2, 6, 2, 4).flip(2).reshape(2, 12, 4)
    assert torch.equal(reorder_gate_up(w, GateUpOrder.INTERLEAVED, RowOrder.UP_GATE_INTERLEAVED), swapped)
    # vLLM FlashInfer CUTLASS: de-interleave, then cat([up, gate])
    assert torch.equal(reorder_gate_up(w, GateUpOrder.INTERLEAVED, RowOrder.UP_GATE_HALVES),
                       torch.cat([w[:, 1::2], w[:, ::2]], dim=1))


def small_weights(gen, e=2, h=64, i=32, bias=True):
    return MoEWeights(**random_layer(e, h, i, bias=bias, generator=gen))


@pytest.mark.parametrize("source", [GateUpOrder.INTERLEAVED, GateUpOrder.CONCATENATED])
def test_pad_layer_by_hand(gen, source):
    w = small_weights(gen)  # H=64, I=32
    p = pad_layer(w, source, source, hidden_multiple=128, intermediate_multiple=96)
    assert (p.hidden, p.intermediate) == (128, 96)
    e, i, ip, h, hp = 2, 32, 96, 64, 128

    def padded_w13(t, fill, k_new):
        out = torch.full((e, 2 * ip, k_new), fill, dtype=t.dtype)
        for x in range(e):
            gate, up = canonical_gate_up(t[x], RowOrder(source.value))
            gate = gate + [torch.full((t.shape[2],), fill, dtype=t.dtype)] * (ip - i)
            up = up + [torch.full((t.shape[2],), fill, dtype=t.dtype)] * (ip - i)
            for r, row in enumerate(rows_of(gate, up, RowOrder(source.value))):
                out[x, r, : row.shape[0]] = row
        return out

    assert torch.equal(p.w13_weight, padded_w13(w.w13_weight, 0, hp // 2))
    assert torch.equal(p.w13_weight_scale, padded_w13(w.w13_weight_scale, NEUTRAL_SCALE, hp // 32))
    bias = torch.zeros(e, 2 * ip, dtype=w.w13_bias.dtype)
    for x in range(e):
        gate, up = canonical_gate_up(w.w13_bias[x], RowOrder(source.value))
        zero = torch.zeros((), dtype=bias.dtype)
        bias[x] = torch.stack(rows_of(gate + [zero] * (ip - i), up + [zero] * (ip - i), RowOrder(source.value)))
    assert torch.equal(p.w13_bias, bias)
    w2 = torch.zeros(e, hp, ip // 2, dtype=torch.uint8)
    w2[:, :h, : i // 2] = w.w2_weight
    s2 = torch.full((e, hp, ip // 32), NEUTRAL_SCALE, dtype=torch.uint8)
    s2[:, :h, : i // 32] = w.w2_weight_scale
    b2 = torch.zeros(e, hp, dtype=w.w2_bias.dtype)
    b2[:, :h] = w.w2_bias
    assert torch.equal(p.w2_weight, w2) and torch.equal(p.w2_weight_scale, s2) and torch.equal(p.w2_bias, b2)


def test_pad_layer_without_padding_is_the_identity(gen):
    w = small_weights(gen, bias=False)
    p = pad_layer(w, GateUpOrder.INTERLEAVED, GateUpOrder.INTERLEAVED)
    assert torch.equal(p.w13_weight, w.w13_weight) and torch.equal(p.w2_weight_scale, w.w2_weight_scale)
    assert p.w13_bias is None and p.w2_bias is None
    with pytest.raises(ValueError, match="already larger"):
        pad_dim(w.w2_weight, 1, 1)


def test_phantom_expert_ids():
    ids = torch.tensor([[0, -1], [-1, -1], [3, 2]], dtype=torch.int32)
    assert phantom_expert_ids(ids, 4).tolist() == [[0, 4], [4, 4], [3, 2]]


# ---- triton_kernels ----

@pytest.mark.parametrize("hopper", [True, False])
@pytest.mark.parametrize("source", [GateUpOrder.INTERLEAVED, GateUpOrder.CONCATENATED])
def test_triton_kernels_layout_by_hand(gen, hopper, source):
    w = small_weights(gen, e=2, h=160, i=32)  # H = 5 blocks: Hopper pads the scale K axis to 8 columns
    t = tk.tk_layout(w, source, hopper=hopper)
    assert t.intermediate == 64
    inter = pad_layer(w, source, GateUpOrder.INTERLEAVED, intermediate_multiple=64)  # checked by hand above
    k13 = 8 if hopper else 5
    assert tuple(t.w13_weight.shape) == (2, 80, 128) and t.w13_weight.stride(1) == 1
    assert tuple(t.w13_weight_scale.shape) == (2, k13, 128) and t.w13_weight_scale.stride(1) == 1
    assert tuple(t.w2_weight_scale.shape) == (2, 4 if hopper else 2, 160)
    for e in range(2):
        for n in range(128):
            assert torch.equal(t.w13_weight[e, :, n], inter.w13_weight[e, n])
            assert torch.equal(t.w13_weight_scale[e, :5, n], inter.w13_weight_scale[e, n])
            assert bool((t.w13_weight_scale[e, 5:, n] == NEUTRAL_SCALE).all())
        for n in range(160):
            assert torch.equal(t.w2_weight[e, :, n], inter.w2_weight[e, n])
    # gate/up pairs: row 2r of the interleaved w13 is gate r of the source
    gate, _ = canonical_gate_up(w.w13_weight[1], RowOrder(source.value))
    assert torch.equal(t.w13_weight[1, :, 6], gate[3])
    assert t.w13_bias.dtype == torch.float32 and torch.equal(t.w13_bias, inter.w13_bias.float())
    assert t.w2_bias.dtype == torch.float32


def bitmatrix_by_hand(ids, num_experts):
    cols = (num_experts + 31) // 32
    out = []
    for row in ids.tolist():
        words = [0] * cols
        for e in row:
            if e >= 0:
                words[e // 32] |= 1 << (e % 32)
        out.append([w - (1 << 32) if w >= 1 << 31 else w for w in words])
    return torch.tensor(out, dtype=torch.int32)


def test_pack_bitmatrix_by_hand(gen):
    ids = torch.tensor([[0, 31, 32, 39], [-1, 5, -1, 33], [-1, -1, -1, -1], [31, 30, 1, 0]], dtype=torch.int32)
    got = tk.pack_bitmatrix(ids, 40)
    assert got.dtype == torch.int32 and torch.equal(got, bitmatrix_by_hand(ids, 40))
    ids = torch.stack([torch.randperm(64, generator=gen)[:4] for _ in range(33)]).int()
    ids[::3, 1] = -1
    assert torch.equal(tk.pack_bitmatrix(ids, 64), bitmatrix_by_hand(ids, 64))


# ---- FlashInfer CUTLASS ----

@pytest.mark.parametrize("source", [GateUpOrder.INTERLEAVED, GateUpOrder.CONCATENATED])
def test_cutlass_layout(gen, source):
    w = small_weights(gen, e=2, h=64, i=32)
    spec = MoESpec(num_experts=2, top_k=1, hidden_size=64, intermediate_size=32, activation=SWIGLU,
                   gate_up_order=source, has_bias=True)
    p = fic.cutlass_layout(w, spec)
    assert (p.hidden, p.intermediate) == (128, 128) and p.order is RowOrder.UP_GATE_HALVES
    gate, up = canonical_gate_up(w.w13_weight[0], RowOrder(source.value))
    # [up; gate] halves of 128 rows each, each half zero-padded after its 32 real rows
    for r in range(32):
        assert torch.equal(p.w13_weight[0, r, :32], up[r]) and torch.equal(p.w13_weight[0, 128 + r, :32], gate[r])
    assert not p.w13_weight[:, 32:128].any() and not p.w13_weight[:, :, 32:].any()
    bgate, bup = canonical_gate_up(w.w13_bias[1], RowOrder(source.value))
    assert torch.equal(p.w13_bias[1, :32], torch.stack(bup)) and torch.equal(p.w13_bias[1, 128:160], torch.stack(bgate))
    assert p.w13_bias.dtype == torch.bfloat16


def test_cutlass_swiglu_params():
    spec = MoESpec(num_experts=4, top_k=1, hidden_size=32, intermediate_size=32, activation=SWIGLU)
    got = fic.swiglu_params(spec, "cpu")
    assert got["swiglu_alpha"].tolist() == pytest.approx([1.702] * 4)
    assert got["swiglu_beta"].tolist() == [1.0] * 4 and got["swiglu_limit"].tolist() == [7.0] * 4
    assert got["swiglu_alpha"].dtype == torch.float32
    spec = MoESpec(num_experts=4, top_k=1, hidden_size=32, intermediate_size=32, activation=SILU)
    assert set(fic.swiglu_params(spec, "cpu").values()) == {None}


@pytest.mark.parametrize("text, expected", [("0.7.2.post1", (0, 7, 2)), ("0.6.16", (0, 6, 16)),
                                            ("0.6.18rc2", (0, 6, 18)), ("1.0.0+cu130", (1, 0, 0)), ("", ())])
def test_version_tuple(text, expected):
    assert fic.version_tuple(text) == expected


# ---- FlashInfer trtllm-gen ----

def test_trtllm_layout(gen):
    w = small_weights(gen, e=2, h=64, i=32)
    spec = MoESpec(num_experts=2, top_k=1, hidden_size=64, intermediate_size=32, activation=SWIGLU, has_bias=True)
    p = fit.trtllm_layout(w, spec)
    assert (p.hidden, p.intermediate) == (256, 128)
    for r in range(32):  # [u0, g0, u1, g1, ...]: row 2r is up r (checkpoint row 2r+1), row 2r+1 gate r
        assert torch.equal(p.w13_weight[1, 2 * r, :32], w.w13_weight[1, 2 * r + 1])
        assert torch.equal(p.w13_weight[1, 2 * r + 1, :32], w.w13_weight[1, 2 * r])
        assert torch.equal(p.w13_weight_scale[1, 2 * r, :2], w.w13_weight_scale[1, 2 * r + 1])
    assert not p.w13_weight[:, 64:].any()
    assert p.w13_bias.dtype == torch.float32 and p.w13_bias[0, 0] == w.w13_bias[0, 1].float()


def test_pack_topk_by_hand():
    ids = torch.tensor([[0, 5], [7, 32767]], dtype=torch.int32)
    weights = torch.tensor([[0.5, 0.25], [0.375, -1.0]])  # exact in bf16

    def bf16_bits(x):
        return struct.unpack(">I", struct.pack(">f", x))[0] >> 16

    expected = [[(i << 16) | bf16_bits(wt) for i, wt in zip(ri, rw)] for ri, rw in zip(ids.tolist(), weights.tolist())]
    expected = [[v - (1 << 32) if v >= 1 << 31 else v for v in row] for row in expected]
    assert fit.pack_topk(ids, weights).tolist() == expected


# ---- Marlin ----

def test_marlin_scales_by_hand(gen):
    e, n, groups = 2, 128, 4  # N = 128 output rows, K = 128 (4 groups of 32)
    s = torch.randint(100, 140, (e, n, groups), dtype=torch.uint8, generator=gen)
    got = marlin.marlin_scales(s)
    assert got.dtype == torch.float8_e8m0fnu and tuple(got.shape) == (e, groups, n)
    expected = torch.empty(e, groups * n, dtype=torch.uint8)
    for x in range(e):
        for pos in range(groups * n):
            t = pos % 4
            p1 = pos - t + (0, 2, 1, 3)[t]           # mxfp4_marlin_process_scales: [0, 2, 1, 3] in each 4
            chunk, j = divmod(p1, 64)                # marlin_permute_scales: within each 64 of the [K/32, N] rows,
            i, jj = divmod(j, 8)                     # out[8i + jj] = in[i + 8jj]
            g, col = divmod(chunk * 64 + i + 8 * jj, n)
            expected[x, pos] = s[x, col, g]
    assert torch.equal(got.view(torch.uint8).reshape(e, -1), expected)


def test_marlin_bias_by_hand(gen):
    b = torch.randn(2, 64, generator=gen).to(torch.bfloat16)
    single = {8 * i + t: 2 * i + (0, 1, 8, 9, 16, 17, 24, 25)[t] for i in range(4) for t in range(8)}
    expected = torch.stack([torch.stack([b[x, (p // 32) * 32 + single[p % 32]] for p in range(64)]) for x in range(2)])
    assert torch.equal(marlin.marlin_bias(b), expected)


def test_marlin_repack_input_by_hand(gen):
    w = torch.randint(0, 256, (16, 8), dtype=torch.uint8, generator=gen)  # N=16, K=16
    got = marlin.marlin_repack_input(w)
    assert got.dtype == torch.int32 and tuple(got.shape) == (2, 16)
    for kw in range(2):
        for n in range(16):
            b = w[n, 4 * kw: 4 * kw + 4].tolist()
            word = b[0] | b[1] << 8 | b[2] << 16 | b[3] << 24
            assert int(got[kw, n]) == (word - (1 << 32) if word >= 1 << 31 else word)


@pytest.mark.parametrize("activation, order", [(SWIGLU, RowOrder.INTERLEAVED), (SILU, RowOrder.CONCATENATED)])
def test_marlin_layout_row_order_and_padding(gen, activation, order):
    w = small_weights(gen, e=2, h=64, i=32)
    spec = MoESpec(num_experts=2, top_k=1, hidden_size=64, intermediate_size=32, activation=activation,
                   gate_up_order=GateUpOrder.INTERLEAVED, has_bias=True)
    p = marlin.marlin_layout(w, spec)
    assert (p.hidden, p.intermediate, p.order) == (256, 128, order)
    assert torch.equal(p.w13_weight, reorder_gate_up(pad_layer(w, GateUpOrder.INTERLEAVED, GateUpOrder.INTERLEAVED,
                                                               hidden_multiple=256, intermediate_multiple=128).w13_weight,
                                                     RowOrder.INTERLEAVED, order))
