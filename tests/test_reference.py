"""The reference backend, driven through Mxfp4MoEMethod, against an independent float64 loop."""

import pytest
import torch

from mxfp4_plugin import Activation, ActivationSpec, GateUpOrder, MoESpec, Mxfp4MoEMethod, ParallelLayout, Platform
from mxfp4_plugin.spec import contiguous_expert_map
from mxfp4_testing import moe_f64, random_layer, random_routing, rel_err

CPU = Platform("cpu")
SWIGLU = ActivationSpec(Activation.SWIGLU_OAI, alpha=1.702, limit=7.0)
SILU = ActivationSpec(Activation.SILU)


def make_method(spec: MoESpec) -> Mxfp4MoEMethod:
    return Mxfp4MoEMethod(spec, request="reference", platform=CPU)


@pytest.mark.parametrize("activation", [SWIGLU, SILU], ids=["swiglu_oai", "silu"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("order", list(GateUpOrder), ids=lambda o: o.value)
@pytest.mark.parametrize("tokens", [1, 7, 33])
def test_reference_matches_float64(activation, bias, order, tokens, gen):
    e, k, h, i = 6, 2, 64, 96
    spec = MoESpec(num_experts=e, top_k=k, hidden_size=h, intermediate_size=i, activation=activation,
                   gate_up_order=order, has_bias=bias, act_dtype=torch.float32)
    tensors = random_layer(e, h, i, bias=bias, act_dtype=torch.float32, generator=gen)
    method = make_method(spec)
    method.process_weights_after_loading(tensors)
    x = torch.randn(tokens, h, generator=gen)
    w, ids = random_routing(tokens, e, k, generator=gen)
    out = method(x, w, ids)
    ref = moe_f64(x, tensors, w, ids, activation=activation.kind.value, alpha=activation.alpha,
                  limit=activation.limit, interleaved=order is GateUpOrder.INTERLEAVED)
    assert out.shape == (tokens, h) and out.dtype == torch.float32
    assert rel_err(out, ref) < 1e-6


def test_swiglu_clamps_are_exercised(gen):
    """With large weights the limit is hit on both sides; the float64 loop still agrees."""
    e, k, h, i = 4, 2, 32, 32
    spec = MoESpec(num_experts=e, top_k=k, hidden_size=h, intermediate_size=i, activation=SWIGLU,
                   has_bias=True, act_dtype=torch.float32)
    tensors = random_layer(e, h, i, bias=True, act_dtype=torch.float32, generator=gen)
    tensors["w13_weight_scale"].fill_(129)  # x4: pre-activations well past +-7
    method = make_method(spec)
    method.process_weights_after_loading(tensors)
    x = torch.randn(5, h, generator=gen) * 3
    w, ids = random_routing(5, e, k, generator=gen)
    from mxfp4_testing import dequantize_f64
    h_pre = x.double() @ dequantize_f64(tensors["w13_weight"][0], tensors["w13_weight_scale"][0]).T
    assert float(h_pre.abs().max()) > 7.0
    ref = moe_f64(x, tensors, w, ids, activation="swiglu_oai", alpha=1.702, limit=7.0)
    assert rel_err(method(x, w, ids), ref) < 1e-6


@pytest.mark.parametrize("ep_rank", [0, 1, 2])
def test_expert_parallel_map_skips_remote_experts(ep_rank, gen):
    e, k, h, i, ep = 8, 3, 64, 64, 3
    expert_map = contiguous_expert_map(e, ep_rank, ep)
    local = sum(1 for v in expert_map if v >= 0)
    spec = MoESpec(num_experts=e, num_local_experts=local, top_k=k, hidden_size=h, intermediate_size=i,
                   activation=SWIGLU, has_bias=True, act_dtype=torch.float32, expert_map=expert_map,
                   parallel=ParallelLayout(ep_rank=ep_rank, ep_size=ep))
    tensors = random_layer(local, h, i, bias=True, act_dtype=torch.float32, generator=gen)
    method = make_method(spec)
    method.process_weights_after_loading(tensors)
    x = torch.randn(9, h, generator=gen)
    w, ids = random_routing(9, e, k, generator=gen)
    ref = moe_f64(x, tensors, w, ids, activation="swiglu_oai", alpha=1.702, limit=7.0, expert_map=expert_map)
    assert rel_err(method(x, w, ids), ref) < 1e-6


def test_expert_parallel_ranks_sum_to_the_whole_layer(gen):
    """Three EP ranks together compute exactly what one rank holding every expert computes."""
    e, k, h, i = 7, 2, 32, 64
    whole = random_layer(e, h, i, bias=True, act_dtype=torch.float32, generator=gen)
    x = torch.randn(11, h, generator=gen)
    w, ids = random_routing(11, e, k, generator=gen)
    total = torch.zeros(11, h)
    for rank in range(3):
        emap = contiguous_expert_map(e, rank, 3)
        keep = [g for g, l in enumerate(emap) if l >= 0]
        spec = MoESpec(num_experts=e, num_local_experts=len(keep), top_k=k, hidden_size=h, intermediate_size=i,
                       activation=SWIGLU, has_bias=True, act_dtype=torch.float32, expert_map=emap)
        method = make_method(spec)
        method.process_weights_after_loading({n: t[keep] for n, t in whole.items()})
        total += method(x, w, ids)
    full = make_method(MoESpec(num_experts=e, top_k=k, hidden_size=h, intermediate_size=i, activation=SWIGLU,
                               has_bias=True, act_dtype=torch.float32))
    full.process_weights_after_loading(whole)
    assert rel_err(total, full(x, w, ids)) < 1e-6


def test_routed_scaling_factor(gen):
    e, k, h, i = 4, 2, 32, 32
    spec = MoESpec(num_experts=e, top_k=k, hidden_size=h, intermediate_size=i, activation=SILU,
                   act_dtype=torch.float32, routed_scaling_factor=2.5)
    tensors = random_layer(e, h, i, bias=False, act_dtype=torch.float32, generator=gen)
    method = make_method(spec)
    method.process_weights_after_loading(tensors)
    x = torch.randn(3, h, generator=gen)
    w, ids = random_routing(3, e, k, generator=gen)
    ref = moe_f64(x, tensors, w, ids, activation="silu", interleaved=True, routed_scaling_factor=2.5)
    assert rel_err(method(x, w, ids), ref) < 1e-6


def test_bfloat16_activations_round_once(gen):
    e, k, h, i = 4, 2, 64, 64
    spec = MoESpec(num_experts=e, top_k=k, hidden_size=h, intermediate_size=i, activation=SWIGLU, has_bias=True)
    tensors = random_layer(e, h, i, bias=True, generator=gen)
    method = make_method(spec)
    method.process_weights_after_loading(tensors)
    x = torch.randn(5, h, generator=gen).to(torch.bfloat16)
    w, ids = random_routing(5, e, k, generator=gen)
    out = method(x, w, ids)
    assert out.dtype == torch.bfloat16
    ref = moe_f64(x, tensors, w, ids, activation="swiglu_oai", alpha=1.702, limit=7.0)
    assert rel_err(out, ref) < 2**-8  # one bf16 rounding of the result


def test_zero_tokens(gen):
    spec = MoESpec(num_experts=4, top_k=2, hidden_size=32, intermediate_size=32, activation=SILU,
                   act_dtype=torch.float32)
    method = make_method(spec)
    method.process_weights_after_loading(random_layer(4, 32, 32, bias=False, generator=gen))
    out = method(torch.zeros(0, 32), torch.zeros(0, 2), torch.zeros(0, 2, dtype=torch.int32))
    assert out.shape == (0, 32)


def test_emptied_engine_parameters_leave_the_layer_working(gen):
    """What the adapters do after loading: the engine's parameters become empty, the backend
    keeps what it needs, and the layer's output is unchanged."""
    from mxfp4_plugin.method import empty_engine_parameters

    e, k, h, i = 4, 2, 64, 32
    spec = MoESpec(num_experts=e, top_k=k, hidden_size=h, intermediate_size=i, activation=SWIGLU,
                   has_bias=True, act_dtype=torch.float32)
    tensors = random_layer(e, h, i, bias=True, act_dtype=torch.float32, generator=gen)
    params = {name: torch.nn.Parameter(t.clone(), requires_grad=False) for name, t in tensors.items()}
    method = make_method(spec)
    method.process_weights_after_loading({name: p.data for name, p in params.items()})
    x = torch.randn(3, h, generator=gen)
    w, ids = random_routing(3, e, k, generator=gen)
    before = method(x, w, ids)
    empty_engine_parameters(params.values())
    assert all(p.numel() == 0 for p in params.values())
    assert torch.equal(method(x, w, ids), before)
