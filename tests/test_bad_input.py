"""Bad input: every error names the offending input, what was expected and what was found."""

import pytest
import torch

from mxfp4_plugin import Activation, ActivationSpec, MoESpec, Mxfp4MoEMethod, ParallelLayout, Platform
from mxfp4_plugin.oracle import BackendRequestError
from mxfp4_testing import random_layer, random_routing

SWIGLU = ActivationSpec(Activation.SWIGLU_OAI, alpha=1.702, limit=7.0)


def spec(**overrides):
    args = dict(num_experts=4, top_k=2, hidden_size=64, intermediate_size=64, activation=SWIGLU, has_bias=True)
    args.update(overrides)
    return MoESpec(**args)


@pytest.mark.parametrize("overrides, message", [
    ({"hidden_size": 2881}, "hidden_size: must be a multiple of the MXFP4 block size 32, got 2881"),
    ({"intermediate_size": 100}, "intermediate_size: must be a multiple of the MXFP4 block size 32, got 100"),
    ({"top_k": 5}, r"top_k: cannot exceed num_experts \(4\), got 5"),
    ({"num_experts": 0}, "num_experts: expected a positive integer, got 0"),
    ({"act_dtype": torch.int8}, "act_dtype: expected bfloat16, float16 or float32, got torch.int8"),
    ({"num_local_experts": 2}, r"expert_map: required when num_local_experts \(2\) differs"),
    ({"num_local_experts": 2, "expert_map": (0, 1, -1)}, r"expert_map: expected 4 entries"),
    ({"num_local_experts": 2, "expert_map": (0, 0, -1, -1)}, "expert_map: expected each local index 0..1 exactly once"),
    ({"routed_scaling_factor": 0.0}, "routed_scaling_factor: expected a positive number"),
])
def test_bad_spec(overrides, message):
    with pytest.raises(ValueError, match=message):
        spec(**overrides)


def test_bad_activation_and_layout():
    with pytest.raises(ValueError, match="activation: swiglu_oai needs alpha and limit"):
        ActivationSpec(Activation.SWIGLU_OAI)
    with pytest.raises(ValueError, match="activation: silu takes no alpha or limit"):
        ActivationSpec(Activation.SILU, alpha=1.0)
    with pytest.raises(ValueError, match="'gelu' is not a valid Activation"):
        ActivationSpec("gelu")
    with pytest.raises(ValueError, match="parallel: expected 0 <= tp_rank < tp_size, got tp_rank=2, tp_size=2"):
        ParallelLayout(tp_rank=2, tp_size=2)


@pytest.fixture
def method():
    return Mxfp4MoEMethod(spec(), request="reference", platform=Platform("cpu"))


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.pop("w2_weight_scale"), r"w2_weight_scale: missing; expected torch.uint8 \(4, 64, 2\)"),
    (lambda t: t.update(w13_weight=t["w13_weight"][:, :, :16].contiguous()),
     r"w13_weight: expected torch.uint8 \(4, 128, 32\), got torch.uint8 \(4, 128, 16\)"),
    (lambda t: t.update(w2_weight=t["w2_weight"].to(torch.int8)),
     r"w2_weight: expected torch.uint8 \(4, 64, 32\), got torch.int8"),
    (lambda t: t.update(w13_bias=t["w13_bias"].float()),
     r"w13_bias: expected torch.bfloat16 \(4, 128\), got torch.float32"),
    (lambda t: t.update(extra=torch.zeros(1)), r"unexpected MoE tensors \['extra'\]"),
    (lambda t: t["w13_weight_scale"].__setitem__((0, 0, 0), 255), "w13 scales: contains the E8M0 NaN byte 255"),
])
def test_bad_weights(method, edit, message, gen):
    tensors = random_layer(4, 64, 64, bias=True, generator=gen)
    edit(tensors)
    with pytest.raises((ValueError, TypeError), match=message):
        method.process_weights_after_loading(tensors)


def test_forward_before_loading(method):
    with pytest.raises(RuntimeError, match="call process_weights_after_loading first"):
        method(torch.zeros(1, 64, dtype=torch.bfloat16), torch.zeros(1, 2), torch.zeros(1, 2, dtype=torch.int32))


@pytest.mark.parametrize("x, w, ids, message", [
    (torch.zeros(3, 32, dtype=torch.bfloat16), torch.zeros(3, 2), torch.zeros(3, 2, dtype=torch.int32),
     r"hidden_states: expected shape \[tokens, 64\], got \(3, 32\)"),
    (torch.zeros(3, 64), torch.zeros(3, 2), torch.zeros(3, 2, dtype=torch.int32),
     "hidden_states: expected dtype torch.bfloat16 .* got torch.float32"),
    (torch.zeros(3, 64, dtype=torch.bfloat16), torch.zeros(3, 3), torch.zeros(3, 2, dtype=torch.int32),
     r"topk_weights: expected shape \[3, 2\] \(tokens, top_k\), got \(3, 3\)"),
    (torch.zeros(3, 64, dtype=torch.bfloat16), torch.zeros(3, 2), torch.zeros(3, 2),
     "topk_ids: expected an integer dtype"),
    (torch.zeros(3, 64, dtype=torch.bfloat16), torch.zeros(3, 2, dtype=torch.int32), torch.zeros(3, 2, dtype=torch.int32),
     "topk_weights: expected a floating-point dtype"),
])
def test_bad_forward_inputs(method, x, w, ids, message, gen):
    method.process_weights_after_loading(random_layer(4, 64, 64, bias=True, generator=gen))
    with pytest.raises((ValueError, TypeError), match=message):
        method(x, w, ids)


def test_unknown_backend_name():
    with pytest.raises(BackendRequestError, match="unknown backend 'fastest' .* registered backends are \\['reference', 'triton'\\]"):
        Mxfp4MoEMethod(spec(), request="fastest", platform=Platform("cpu"))


def test_allocate_gives_zeroed_canonical_params(method):
    params = method.allocate()
    assert {n: (tuple(t.shape), t.dtype) for n, t in params.items()} == {
        "w13_weight": ((4, 128, 32), torch.uint8), "w13_weight_scale": ((4, 128, 2), torch.uint8),
        "w2_weight": ((4, 64, 32), torch.uint8), "w2_weight_scale": ((4, 64, 2), torch.uint8),
        "w13_bias": ((4, 128), torch.bfloat16), "w2_bias": ((4, 64), torch.bfloat16)}
    assert all(int(t.count_nonzero()) == 0 for t in params.values())
