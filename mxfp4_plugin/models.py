"""Model families whose checkpoints the plugin understands: config.json -> MoESpec."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .sharding import intermediate_per_rank
from .spec import Activation, ActivationSpec, GateUpOrder, MoESpec, ParallelLayout, contiguous_expert_map

# OpenAI's config.json has no swiglu_alpha (transformers >= 5 writes one); engines hard-code 1.702.
GPT_OSS_SWIGLU_ALPHA = 1.702
GPT_OSS_SWIGLU_LIMIT = 7.0

# Canonical parameter (weights.py) -> the gpt-oss checkpoint tensor it is loaded from
# (``model.layers.N.mlp.experts.<name>``, ENGINE_NOTES 2.2); adapters name it in their errors.
GPT_OSS_CHECKPOINT_TENSORS: dict[str, str] = {
    "w13_weight": "gate_up_proj_blocks",
    "w13_weight_scale": "gate_up_proj_scales",
    "w13_bias": "gate_up_proj_bias",
    "w2_weight": "down_proj_blocks",
    "w2_weight_scale": "down_proj_scales",
    "w2_bias": "down_proj_bias",
}


def gpt_oss_activation(config: Mapping) -> ActivationSpec:
    return ActivationSpec(Activation.SWIGLU_OAI, alpha=float(config.get("swiglu_alpha", GPT_OSS_SWIGLU_ALPHA)),
                          limit=float(config.get("swiglu_limit", GPT_OSS_SWIGLU_LIMIT)))


def spec_from_hf_config(config: Mapping, *, parallel: ParallelLayout = ParallelLayout(),
                        act_dtype: torch.dtype = torch.bfloat16) -> MoESpec:
    """The MoE layer of a Hugging Face ``config.json`` (gpt-oss) on the rank ``parallel`` names."""
    model_type = config.get("model_type")
    if model_type != "gpt_oss":
        raise ValueError(f"config.json: model_type {model_type!r} is not supported; mxfp4-plugin reads gpt_oss configs")
    for key in ("num_local_experts", "num_experts_per_tok", "hidden_size", "intermediate_size"):
        if key not in config:
            raise ValueError(f"config.json: missing {key!r}, needed for a gpt_oss MoE layer")
    return spec_for_rank(
        num_experts=int(config["num_local_experts"]), top_k=int(config["num_experts_per_tok"]),
        hidden_size=int(config["hidden_size"]), intermediate_size=int(config["intermediate_size"]),
        activation=gpt_oss_activation(config), gate_up_order=GateUpOrder.INTERLEAVED, has_bias=True,
        act_dtype=act_dtype, parallel=parallel)


def spec_for_rank(*, num_experts: int, top_k: int, hidden_size: int, intermediate_size: int,
                  activation: ActivationSpec, gate_up_order: GateUpOrder, has_bias: bool,
                  act_dtype: torch.dtype, parallel: ParallelLayout) -> MoESpec:
    """A layer of whole sizes (``intermediate_size`` before TP) as one rank holds it:
    the intermediate split in whole blocks, experts placed linearly across EP ranks."""
    expert_map = contiguous_expert_map(num_experts, parallel.ep_rank, parallel.ep_size) if parallel.ep_size > 1 else None
    return MoESpec(
        num_experts=num_experts,
        num_local_experts=sum(1 for i in expert_map if i >= 0) if expert_map else num_experts,
        top_k=top_k, hidden_size=hidden_size,
        intermediate_size=intermediate_per_rank(intermediate_size, parallel.tp_size),
        activation=activation, gate_up_order=gate_up_order, has_bias=has_bias,
        act_dtype=act_dtype, parallel=parallel, expert_map=expert_map)
