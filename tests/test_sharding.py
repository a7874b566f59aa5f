"""TP sharding arithmetic in whole 32-element blocks (ENGINE_NOTES 2.4)."""

import pytest

from mxfp4_plugin.sharding import intermediate_per_rank, intermediate_slice
from mxfp4_plugin.spec import contiguous_expert_map


@pytest.mark.parametrize("i, tp, per_rank, slices", [
    (2880, 1, 2880, [(0, 2880)]),
    (2880, 2, 1440, [(0, 1440), (1440, 2880)]),
    (2880, 4, 736, [(0, 736), (736, 1472), (1472, 2208), (2208, 2880)]),  # last rank holds 672
    (2880, 8, 384, [(0, 384), (384, 768), (768, 1152), (1152, 1536), (1536, 1920), (1920, 2304), (2304, 2688),
                    (2688, 2880)]),
    (64, 4, 32, [(0, 32), (32, 64), (64, 64), (64, 64)]),  # more ranks than blocks: empty slices
])
def test_block_aligned_slices(i, tp, per_rank, slices):
    assert intermediate_per_rank(i, tp) == per_rank
    got = [(s.start, s.stop) for s in (intermediate_slice(i, r, tp) for r in range(tp))]
    assert got == slices
    assert all(a % 32 == 0 for a, _ in got)
    assert sum(b - a for a, b in got) == i


def test_sharding_errors():
    with pytest.raises(ValueError, match="intermediate_size: must be a multiple of 32, got 100"):
        intermediate_per_rank(100, 2)
    with pytest.raises(ValueError, match="tp_rank: expected 0 <= tp_rank < 2, got 2"):
        intermediate_slice(64, 2, 2)


@pytest.mark.parametrize("e, ep", [(8, 2), (7, 3), (128, 8), (5, 5)])
def test_linear_expert_placement_covers_each_expert_once(e, ep):
    maps = [contiguous_expert_map(e, r, ep) for r in range(ep)]
    for g in range(e):
        assert sum(1 for m in maps if m[g] >= 0) == 1
    sizes = [sum(1 for v in m if v >= 0) for m in maps]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


@pytest.mark.parametrize("tp", [2, 3, 4])
def test_tp_ranks_loaded_like_the_gpt_oss_loader_sum_to_the_whole_layer(tp, gen):
    """Each rank takes its block-aligned slice (w13 rows in gate/up pairs, w2 columns, scales by
    block) into zero-filled parameters, the down-projection bias on rank 0 only, as vLLM's and
    SGLang's gpt-oss loaders do; the ranks' outputs, summed (the all-reduce), are the layer's."""
    import torch

    from mxfp4_plugin import Activation, ActivationSpec, MoESpec, Mxfp4MoEMethod, Platform
    from mxfp4_testing import random_layer, random_routing, rel_err

    e, k, h, i = 4, 2, 64, 160  # 5 blocks: uneven over 2, 3 and 4 ranks
    act = ActivationSpec(Activation.SWIGLU_OAI, alpha=1.702, limit=7.0)
    whole = random_layer(e, h, i, bias=True, act_dtype=torch.float32, generator=gen)
    x = torch.randn(9, h, generator=gen)
    w, ids = random_routing(9, e, k, generator=gen)

    def method(intermediate):
        spec = MoESpec(num_experts=e, top_k=k, hidden_size=h, intermediate_size=intermediate, activation=act,
                       has_bias=True, act_dtype=torch.float32)
        return Mxfp4MoEMethod(spec, request="reference", platform=Platform("cpu"))

    full = method(i)
    full.process_weights_after_loading(whole)
    total = torch.zeros(9, h)
    for rank in range(tp):
        part = method(intermediate_per_rank(i, tp))
        params = part.allocate()
        s = intermediate_slice(i, rank, tp)
        n = s.stop - s.start
        params["w13_weight"][:, :2 * n] = whole["w13_weight"][:, 2 * s.start:2 * s.stop]
        params["w13_weight_scale"][:, :2 * n] = whole["w13_weight_scale"][:, 2 * s.start:2 * s.stop]
        params["w13_bias"][:, :2 * n] = whole["w13_bias"][:, 2 * s.start:2 * s.stop]
        params["w2_weight"][:, :, :n // 2] = whole["w2_weight"][:, :, s.start // 2:s.stop // 2]
        params["w2_weight_scale"][:, :, :n // 32] = whole["w2_weight_scale"][:, :, s.start // 32:s.stop // 32]
        if rank == 0:
            params["w2_bias"].copy_(whole["w2_bias"])
        part.process_weights_after_loading(params)
        total += part(x, w, ids)
    assert rel_err(total, full(x, w, ids)) < 1e-6
