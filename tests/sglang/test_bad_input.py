"""Bad input: a --moe-runner-backend the plugin cannot honour, malformed checkpoint expert tensors."""

from __future__ import annotations

import pytest
import torch

from mxfp4_testing import random_layer
from mxfp4_plugin.oracle import BackendRequestError
from sglang_layers import load_through_gpt_oss, moe_layer, to_checkpoint

E, K, H, I = 4, 2, 64, 64
PREFIX = "model.layers.0.mlp.experts"


def build(runner_backend, flag="mxfp4_plugin_reference"):
    runner_backend(flag)
    return moe_layer(experts=E, top_k=K, hidden=H, intermediate=I)


@pytest.mark.parametrize("flag,message", [
    ("deep_gemm", r"--moe-runner-backend 'deep_gemm' has no mxfp4-plugin counterpart.*mxfp4_plugin_reference"),
    ("flashinfer_mxfp4", r"--moe-runner-backend flashinfer_mxfp4 .* on cpu"),
    ("triton_kernel", r"'triton_kernels' \(from --moe-runner-backend\)"),
])
def test_runner_backend_the_plugin_cannot_honour(runner_backend, flag, message):
    with pytest.raises(BackendRequestError, match=message):
        build(runner_backend, flag)


def test_env_and_flag_disagree(runner_backend, monkeypatch):
    monkeypatch.setenv("MXFP4_PLUGIN_BACKEND", "reference")
    build(runner_backend, "mxfp4_plugin_reference")  # agreeing: fine
    with pytest.raises(BackendRequestError, match=r"MXFP4_PLUGIN_BACKEND='reference' conflicts with --moe-runner-backend"):
        build(runner_backend, "mxfp4_plugin_triton")


def checkpoint(gen):
    return to_checkpoint(random_layer(E, H, I, bias=True, generator=gen), PREFIX)


def test_wrong_blocks_shape(runner_backend, gen):
    layer = build(runner_backend)
    ckpt = checkpoint(gen)
    blocks = ckpt[f"{PREFIX}.gate_up_proj_blocks"]
    ckpt[f"{PREFIX}.gate_up_proj_blocks"] = blocks[:, :, :-1]  # one block of 32 short along H
    with pytest.raises(ValueError, match=r"w13_weight: expected shape \(4, 128, 32\) .* got \(4, 128, 16\)"):
        load_through_gpt_oss(layer, ckpt, intermediate=I, experts=E)


def test_wrong_scales_dtype(runner_backend, gen):
    layer = build(runner_backend)
    ckpt = checkpoint(gen)
    ckpt[f"{PREFIX}.down_proj_scales"] = ckpt[f"{PREFIX}.down_proj_scales"].float()
    with pytest.raises(TypeError, match=r"w2_weight_scale: expected dtype torch.uint8, got torch.float32"):
        load_through_gpt_oss(layer, ckpt, intermediate=I, experts=E)


def test_missing_scales(runner_backend, gen):
    layer = build(runner_backend)
    ckpt = checkpoint(gen)
    del ckpt[f"{PREFIX}.gate_up_proj_scales"]
    load_through_gpt_oss(layer, ckpt, intermediate=I, experts=E)
    with pytest.raises(ValueError, match=r"gave no \['w13_weight_scale'\].*gate_up_proj_scales"):
        layer.quant_method.process_weights_after_loading(layer)


def test_nan_scale_is_named(runner_backend, gen):
    layer = build(runner_backend)
    ckpt = checkpoint(gen)
    ckpt[f"{PREFIX}.down_proj_scales"][1, 2, 0] = 255  # E8M0 NaN
    load_through_gpt_oss(layer, ckpt, intermediate=I, experts=E)
    with pytest.raises(ValueError, match=r"w2"):
        layer.quant_method.process_weights_after_loading(layer)


def test_hidden_states_of_the_wrong_width(runner_backend, gen):
    from sglang_layers import route

    layer = build(runner_backend)
    load_through_gpt_oss(layer, checkpoint(gen), intermediate=I, experts=E)
    layer.quant_method.process_weights_after_loading(layer)
    x = torch.randn(3, H + 32).bfloat16()
    with pytest.raises(ValueError, match=r"hidden_states: expected shape \[tokens, 64\]"):
        layer(x, route(layer, x[:, :H], torch.randn(3, E).bfloat16()))
