"""SGLang's real classes on CPU: SGLang's model loader builds the tiny gpt-oss with the plugin's
method, SGLang's gpt-oss code loads the checkpoint's experts, and router -> TopK -> FusedMoE.forward
matches the core's reference backend bit for bit and an independent float64 computation.
TP and EP: each rank's layer is built, loaded and run as SGLang does it; the ranks' partial
outputs add up to the whole layer (EP ranks see other ranks' experts as -1)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import load_file

from mxfp4_testing import moe_f64, random_layer, rel_err
from mxfp4_plugin.adapters.sglang.flags import QUANTIZATION_NAME
from mxfp4_plugin.method import Mxfp4MoEMethod
from sglang_layers import checkpoint_layer, load_through_gpt_oss, moe_layer, route, to_checkpoint

ALPHA, LIMIT = 1.702, 7.0


def f64(x, canonical, topk_output, expert_map=None):
    return moe_f64(x, canonical, topk_output.topk_weights, topk_output.topk_ids, activation="swiglu_oai",
                   alpha=ALPHA, limit=LIMIT, expert_map=expert_map)


@pytest.mark.parametrize("flag", ["auto", "mxfp4_plugin_reference"])
def test_tiny_gpt_oss_through_sglang_model_loader(runner_backend, distributed, tiny_checkpoint, loaded_tensors,
                                                  monkeypatch, caplog, gen, flag):
    from sglang.srt.configs.device_config import DeviceConfig
    from sglang.srt.configs.load_config import LoadConfig
    from sglang.srt.configs.model_config import ModelConfig
    from sglang.srt.model_loader import get_model
    import sglang.srt.layers.rotary_embedding.base as rope

    from mxfp4_plugin.adapters.sglang.moe_method import PluginMxfp4MoEMethod

    # A host that is neither CUDA nor SGLang's CPU engine imports rope from vLLM; the CPU path is right here.
    monkeypatch.setattr(rope, "_is_cpu", True)
    runner_backend(flag)
    mc = ModelConfig(model_path=str(tiny_checkpoint), quantization=QUANTIZATION_NAME)
    with caplog.at_level(logging.INFO, logger="mxfp4_plugin"):
        model = get_model(model_config=mc, load_config=LoadConfig(), device_config=DeviceConfig("cpu"))
    decisions = [r.getMessage() for r in caplog.records if r.name.startswith("mxfp4_plugin")]
    assert len(decisions) == 1, decisions  # one line per model whose MoE layers are alike
    assert "backend 'reference'" in decisions[0]

    ckpt = load_file(tiny_checkpoint / "model.safetensors")
    layers = model.model.layers
    assert len(loaded_tensors) == len(layers)
    for index, block in enumerate(layers):
        prefix = f"model.layers.{index}.mlp.experts"
        canonical = checkpoint_layer(ckpt, prefix)
        assert isinstance(block.mlp.experts.quant_method, PluginMxfp4MoEMethod)
        assert block.mlp.experts.runner_backend is None  # standard TopK, local ids
        assert loaded_tensors[index].keys() == canonical.keys()
        for name, t in canonical.items():  # SGLang's loader filled the plugin's parameters bit for bit
            assert torch.equal(loaded_tensors[index][name], t), name

        hidden = block.mlp.experts.hidden_size
        x = torch.randn(9, hidden, generator=gen).bfloat16()
        with torch.inference_mode():  # as SGLang's model runner
            logits, _ = block.mlp.router(x)
            topk_output = route(block.mlp.experts, x, logits)
            out = block.mlp.experts(x, topk_output)
            whole_block = block.mlp(x)  # GptOssSparseMoeBlock.forward: router -> TopK -> experts
        assert topk_output.topk_ids.shape == (9, block.mlp.experts.top_k)

        core = Mxfp4MoEMethod(block.mlp.experts.quant_method.core.spec, request="reference")
        core.process_weights_after_loading(canonical)
        assert torch.equal(out, core.forward(x, topk_output.topk_weights, topk_output.topk_ids))
        assert rel_err(out, f64(x, canonical, topk_output)) < 1e-2
        assert torch.equal(whole_block, out)


@pytest.mark.parametrize("tp,ep", [(2, 1), (1, 2), (2, 2), (3, 1)])
def test_tensor_and_expert_parallel_ranks_add_up(runner_backend, loaded_tensors, monkeypatch, gen, tp, ep):
    import sglang.srt.layers.moe.token_dispatcher.standard as standard
    from sglang.test.parallel_groups import parallel_scope

    # The dispatcher builds its EP id map on get_device(), which needs an accelerator; CPU here.
    monkeypatch.setattr(standard, "get_device", lambda *a, **k: "cpu")
    runner_backend("mxfp4_plugin_reference")
    experts, top_k, hidden, intermediate = 4, 2, 64, 96  # 3 blocks: TP ranks get unequal slices
    canonical = random_layer(experts, hidden, intermediate, bias=True, generator=gen)
    ckpt = to_checkpoint(canonical, "model.layers.0.mlp.experts")
    x = torch.randn(11, hidden, generator=gen).bfloat16()
    logits = torch.randn(11, experts, generator=gen).bfloat16()

    total = torch.zeros(11, hidden, dtype=torch.float64)
    for rank in range(tp * ep):
        ep_rank, tp_rank = divmod(rank, tp)
        # This rank's place, as a scheduler of a tp*ep world sees it (group stubs: no communication
        # happens, each rank's partial output is summed here instead of all-reduced).
        with parallel_scope(tp_size=tp * ep, tp_rank=rank, attn_tp_size=tp * ep, attn_tp_rank=rank,
                            moe_tp_size=tp, moe_tp_rank=tp_rank, moe_ep_size=ep, moe_ep_rank=ep_rank,
                            moe_tp_group=SimpleNamespace(world_size=tp, rank_in_group=tp_rank),
                            moe_ep_group=SimpleNamespace(world_size=ep, rank_in_group=ep_rank)), \
                torch.inference_mode():
            layer = moe_layer(experts=experts, top_k=top_k, hidden=hidden, intermediate=intermediate)
            load_through_gpt_oss(layer, ckpt, intermediate=intermediate, experts=experts)
            layer.quant_method.process_weights_after_loading(layer)
            topk_output = route(layer, x, logits)
            out = layer(x, topk_output)
        spec = layer.quant_method.core.spec
        assert spec.intermediate_size == -(-intermediate // 32 // tp) * 32
        if ep > 1:
            assert spec.expert_map is not None and spec.expert_map.count(-1) == experts - experts // ep
            # the rank alone: only its own experts count
            local = {k: v[ep_rank * (experts // ep):(ep_rank + 1) * (experts // ep)] for k, v in canonical.items()}
            if tp == 1:
                assert rel_err(out, f64(x, local, topk_output, expert_map=list(spec.expert_map))) < 1e-2
        core = Mxfp4MoEMethod(spec, request="reference")
        core.process_weights_after_loading(loaded_tensors[-1])
        assert torch.equal(out, core.forward(x, topk_output.topk_weights, topk_output.topk_ids))
        total += out.double()
    assert rel_err(total, f64(x, canonical, topk_output)) < 1e-2
