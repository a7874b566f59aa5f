"""Helpers: gpt-oss checkpoint tensors <-> canonical tensors, and SGLang MoE layers built on CPU."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from mxfp4_plugin.models import GPT_OSS_CHECKPOINT_TENSORS


def checkpoint_layer(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """gpt-oss checkpoint tensors of one layer -> canonical names and layout (blocks flattened)."""
    out = {}
    for canonical, ckpt in GPT_OSS_CHECKPOINT_TENSORS.items():
        t = tensors[f"{prefix}.{ckpt}"]
        out[canonical] = t.flatten(-2) if ckpt.endswith("_blocks") else t
    return out


def to_checkpoint(canonical: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Canonical tensors -> gpt-oss checkpoint names and layout (blocks [E, rows, K/32, 16])."""
    out = {}
    for name, ckpt in GPT_OSS_CHECKPOINT_TENSORS.items():
        t = canonical[name]
        out[f"{prefix}.{ckpt}"] = t.unflatten(-1, (-1, 16)) if ckpt.endswith("_blocks") else t
    return out


def moe_layer(*, experts: int, top_k: int, hidden: int, intermediate: int, prefix="model.layers.0.mlp.experts"):
    """An SGLang FusedMoE with the plugin's config, built as gpt-oss builds its experts."""
    from sglang.srt.layers.moe.fused_moe_triton.layer import FusedMoE

    from mxfp4_plugin.adapters.sglang.config import PluginMxfp4Config

    return FusedMoE(num_experts=experts, top_k=top_k, hidden_size=hidden, intermediate_size=intermediate, layer_id=0,
                    params_dtype=torch.bfloat16, quant_config=PluginMxfp4Config.from_config({"quant_method": "mxfp4"}),
                    prefix=prefix, activation="silu",  # what gpt-oss passes (config.hidden_act)
                    gemm1_alpha=1.702, gemm1_clamp_limit=7.0, with_bias=True)


def load_through_gpt_oss(layer, checkpoint: dict[str, torch.Tensor], *, intermediate: int, experts: int,
                         prefix="model.layers.0.mlp.experts"):
    """SGLang's own gpt-oss expert loader (``GptOssForCausalLM._load_mxfp4_experts_weights``) on a
    module tree that holds ``layer`` where a GptOssForCausalLM holds its experts."""
    from sglang.srt.models.gpt_oss import GptOssForCausalLM

    holder = torch.nn.Module()
    holder.config = SimpleNamespace(intermediate_size=intermediate, num_local_experts=experts)
    node = holder
    parts = prefix.split(".")
    for part in parts[:-1]:
        child = torch.nn.ModuleList() if part == "layers" else torch.nn.Module()
        if isinstance(node, torch.nn.ModuleList):
            node.append(child)
        else:
            node.add_module(part, child)
        node = child
    node.add_module(parts[-1], layer)
    return GptOssForCausalLM._load_mxfp4_experts_weights(holder, iter(checkpoint.items()))


def route(layer, x: torch.Tensor, logits: torch.Tensor):
    """gpt-oss routing through SGLang's TopK, bound to the layer's runner backend."""
    from sglang.srt.layers.moe.topk import TopK

    topk = TopK(top_k=layer.top_k, renormalize=True, layer_id=0)
    topk.bind_runner_backend(layer.runner_backend)
    return topk(x, logits)
