"""A tiny random gpt-oss checkpoint, made locally (no download): the demo's and tests' model.

``make_tiny_gpt_oss(dst)`` builds a random ``GptOssForCausalLM`` with transformers, saves it in
bf16 under ``dst/bf16``, quantizes it with this package's own ``quantize_checkpoint`` into
``dst/mxfp4``, and writes ``dst/dequantized``: the MXFP4 values as dense bf16 (exact), the
same model for engines and references that read dense weights. transformers is imported here only, lazily: it is not a dependency of the core.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .checkpoint import dequantize_checkpoint, quantize_checkpoint

# Small but real: two layers (one sliding-window, one full attention), 4 experts, top-2.
TINY_CONFIG = dict(
    hidden_size=128, intermediate_size=128, num_local_experts=4, num_experts_per_tok=2, num_hidden_layers=2,
    vocab_size=256, num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=256,
    sliding_window=64, eos_token_id=255, pad_token_id=0, bos_token_id=1,
    rope_parameters={"rope_type": "yarn", "rope_theta": 150000.0, "factor": 4.0, "beta_fast": 32.0, "beta_slow": 1.0,
                     "truncate": False, "original_max_position_embeddings": 64},
)


def make_tiny_gpt_oss(dst: str | Path, *, seed: int = 0, init_std: float = 0.02, expert_std: float = 0.3,
                      lm_head_std: float = 1.0, progress: bool = False, **overrides) -> tuple[Path, Path, Path]:
    """Return ``(bf16_dir, mxfp4_dir, dequantized_dir)``.

    ``init_std`` is transformers' init scale for the trunk: small, so attention stays calm and
    rounding differences are not amplified from layer to layer. ``expert_std`` makes the MoE
    dominate the residual stream (a wrong kernel changes the output) and its scales vary.
    ``lm_head_std`` makes the logits decisive: with the default init the top tokens of a random
    model are nearly tied, and two correct implementations may pick either."""
    from transformers import GptOssConfig, GptOssForCausalLM

    dst = Path(dst)
    bf16_dir, mxfp4_dir, dequantized_dir = dst / "bf16", dst / "mxfp4", dst / "dequantized"
    torch.manual_seed(seed)
    config = GptOssConfig(**{**TINY_CONFIG, "initializer_range": init_std, **overrides})
    model = GptOssForCausalLM(config).to(torch.bfloat16).eval()
    with torch.no_grad():
        model.lm_head.weight.normal_(0, lm_head_std)
        for layer in model.model.layers:
            experts = layer.mlp.experts
            for p in (experts.gate_up_proj, experts.down_proj):
                p.normal_(0, expert_std)
            for p in (experts.gate_up_proj_bias, experts.down_proj_bias):
                p.normal_(0, expert_std / 4)
    model.save_pretrained(bf16_dir)
    quantize_checkpoint(bf16_dir, mxfp4_dir, progress=progress)
    dequantize_checkpoint(mxfp4_dir, dequantized_dir)
    return bf16_dir, mxfp4_dir, dequantized_dir
