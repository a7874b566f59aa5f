"""A tiny random gpt-oss checkpoint, made locally (no download): the demo's and tests' model.

``make_tiny_gpt_oss(dst)`` builds a random ``GptOssForCausalLM`` with transformers, saves it in
bf16 under ``dst/bf16`` and quantizes it with this package's own ``quantize_checkpoint`` into
``dst/mxfp4``. transformers is imported here only, lazily: it is not a dependency of the core.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import quantize_checkpoint

# Small but real: two layers (one sliding-window, one full attention), 4 experts, top-2.
TINY_CONFIG = dict(
    hidden_size=128, intermediate_size=128, num_local_experts=4, num_experts_per_tok=2, num_hidden_layers=2,
    vocab_size=256, num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=256,
    sliding_window=64, eos_token_id=255, pad_token_id=0, bos_token_id=1,
    rope_parameters={"rope_type": "yarn", "rope_theta": 150000.0, "factor": 4.0, "beta_fast": 32.0, "beta_slow": 1.0,
                     "truncate": False, "original_max_position_embeddings": 64},
)


def make_tiny_gpt_oss(dst: str | Path, *, seed: int = 0, init_std: float = 0.02, expert_std: float = 0.08,
                      progress: bool = False, **overrides) -> tuple[Path, Path]:
    """Return ``(bf16_dir, mxfp4_dir)``. ``init_std`` scales every weight at init; a larger one
    makes the logits decisive, so that a wrong kernel changes the greedy tokens. ``expert_std``
    sets the expert weights apart, so the MoE contributes and its scales vary."""
    from transformers import GptOssConfig, GptOssForCausalLM

    dst = Path(dst)
    bf16_dir, mxfp4_dir = dst / "bf16", dst / "mxfp4"
    torch.manual_seed(seed)
    config = GptOssConfig(**{**TINY_CONFIG, "initializer_range": init_std, **overrides})
    model = GptOssForCausalLM(config).to(torch.bfloat16).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            experts = layer.mlp.experts
            for p in (experts.gate_up_proj, experts.down_proj):
                p.normal_(0, expert_std)
            for p in (experts.gate_up_proj_bias, experts.down_proj_bias):
                p.normal_(0, expert_std / 4)
    model.save_pretrained(bf16_dir)
    quantize_checkpoint(bf16_dir, mxfp4_dir, progress=progress)
    return bf16_dir, mxfp4_dir
