"""``flashinfer_cutlass``: FlashInfer's CUTLASS ``cutlass_fused_moe`` (ENGINE_NOTES 5.2, 5.6).

* SM90, W4A16 (BF16 x MXFP4): ``use_w4_group_scaling=True``, bf16 activations only.
  Pure PyTorch (``cutlass_layout``, tested on CPU): w13 rows as ``[up; gate]`` halves
  (``[w3; w1]``), H and I zero-padded to multiples of 128, bf16 biases with the halves
  swapped like the weights. Then the installed FlashInfer's own helpers:
  ``interleave_moe_weights_for_sm90_mixed_gemm(w, "fp4")`` and
  ``interleave_moe_scales_for_sm90_mixed_gemm(s, group_size=32)``, whose scale layout
  changed at 0.6.16 (5-D ``[E, rows/64, K/128, 16, 16]``, ENGINE_NOTES trap 8): we always
  call the installed helper and require >= 0.6.16, the layout vLLM 0.33 feeds.
* SM100, MXFP4 x MXFP8 (``use_mxfp8_act_scaling=True``): same ``[up; gate]`` rows and
  padding, scales through FlashInfer's ``block_scale_interleave``, activations quantized
  with ``mxfp8_quantize`` per call (as vLLM's FLASHINFER_CUTLASS_MXFP4_MXFP8).

SwiGLU-OAI is FlashInfer's Swiglu with per-expert fp32 alpha, beta = 1 (the "+1") and
limit; SiLU is the same activation with none of the three. Experts on other ranks: -1 ids
become a phantom expert id E_loc, owned by EP rank 1 of a 2-rank EP split the kernel is
told about, so it skips them.

Neither path has run on hardware here (the SM90 module needs a ~75-minute JIT build,
ENGINE_NOTES 5.4; there is no Blackwell GPU): ``verified_on`` is empty, so ``auto`` skips it.
"""

from __future__ import annotations

import re

import torch

from ..platform import Platform
from ..spec import Activation, MoESpec
from ..weights import MoEWeights
from .base import Backend
from .layouts import PaddedLayer, RowOrder, pad_dim, pad_layer, phantom_expert_ids

#: vLLM pads H and I to 128 for FlashInfer CUTLASS (ENGINE_NOTES 3.10).
HIDDEN_MULTIPLE = INTERMEDIATE_MULTIPLE = 128
#: First FlashInfer with the 5-D SM90 scale layout this backend feeds (PR #3738).
MIN_FLASHINFER_SM90 = (0, 6, 16)
FAMILIES = ("sm90", "sm100")


def version_tuple(version: str) -> tuple[int, ...]:
    """``"0.7.2.post1"`` -> ``(0, 7, 2)``: the leading numeric release fields."""
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(p) for p in match.group(0).split(".")) if match else ()


def cutlass_layout(weights: MoEWeights, spec: MoESpec) -> PaddedLayer:
    """Rows ``[up; gate]``, H and I padded to 128, biases in the activation dtype."""
    return pad_layer(weights, spec.gate_up_order, RowOrder.UP_GATE_HALVES,
                     hidden_multiple=HIDDEN_MULTIPLE, intermediate_multiple=INTERMEDIATE_MULTIPLE)


def swiglu_params(spec: MoESpec, device) -> dict[str, torch.Tensor | None]:
    """Per-expert fp32 ``swiglu_alpha/beta/limit`` for SwiGLU-OAI; none of them for SiLU."""
    act, e = spec.activation, spec.num_local_experts
    if act.kind is Activation.SILU:
        return {"swiglu_alpha": None, "swiglu_beta": None, "swiglu_limit": None}
    full = lambda v: torch.full((e,), float(v), dtype=torch.float32, device=device)  # noqa: E731
    return {"swiglu_alpha": full(act.alpha), "swiglu_beta": full(1.0), "swiglu_limit": full(act.limit)}


def flashinfer_problem(platform: Platform) -> str | None:
    """Why FlashInfer cannot be used here (shared by both FlashInfer backends), or None."""
    if platform.capability is None:
        return "needs a CUDA GPU"
    if "flashinfer" not in platform.packages:
        return "needs FlashInfer (pip install flashinfer-python), not installed"
    return None


class FlashInferCutlassBackend(Backend):
    name = "flashinfer_cutlass"
    summary = ("FlashInfer cutlass_fused_moe: SM90 W4A16 (bf16 x MXFP4, [up; gate], SM90 interleave helpers); "
               "SM100 MXFP4 x MXFP8")
    verified_on = frozenset()

    @classmethod
    def supports(cls, spec: MoESpec, platform: Platform) -> str | None:
        problem = flashinfer_problem(platform)
        if problem:
            return problem
        if platform.family not in FAMILIES:
            return f"needs compute capability 9.0 (W4A16) or 10.x (MXFP8 activations), found {platform.family}"
        found = platform.versions.get("flashinfer", "")
        if platform.family == "sm90" and version_tuple(found) < MIN_FLASHINFER_SM90:
            return (f"needs FlashInfer >= {'.'.join(map(str, MIN_FLASHINFER_SM90))} on SM90 (the 5-D scale layout "
                    f"of interleave_moe_scales_for_sm90_mixed_gemm), found {found or 'an unknown version'}")
        if spec.act_dtype != torch.bfloat16:
            return (f"needs bfloat16 activations (FP16 is incompatible with the SM90 interleaved weight layout; "
                    f"the SM100 path quantizes bf16 to MXFP8), got {spec.act_dtype}")
        return None

    def prepare(self, weights: MoEWeights) -> None:
        import flashinfer.fused_moe as fm

        p = cutlass_layout(weights, self.spec)
        self._hidden = p.hidden
        self._sm90 = self.platform.family == "sm90"
        if self._sm90:
            self._w13 = fm.interleave_moe_weights_for_sm90_mixed_gemm(p.w13_weight, "fp4")
            self._w2 = fm.interleave_moe_weights_for_sm90_mixed_gemm(p.w2_weight, "fp4")
            self._scales = [fm.interleave_moe_scales_for_sm90_mixed_gemm(p.w13_weight_scale, group_size=32),
                            fm.interleave_moe_scales_for_sm90_mixed_gemm(p.w2_weight_scale, group_size=32)]
        else:
            from flashinfer import block_scale_interleave

            def interleave(s):
                return block_scale_interleave(s.contiguous()).reshape(s.shape)

            fake_input_scale = torch.ones(self.spec.num_local_experts, dtype=torch.float32, device=p.w13_weight.device)
            self._w13, self._w2 = p.w13_weight.view(torch.long), p.w2_weight.view(torch.long)
            self._scales = [interleave(p.w13_weight_scale).view(torch.int32), fake_input_scale,
                            interleave(p.w2_weight_scale).view(torch.int32), fake_input_scale]
        self._b13 = None if p.w13_bias is None else p.w13_bias.to(torch.bfloat16)
        self._b2 = None if p.w2_bias is None else p.w2_bias.to(torch.bfloat16)
        self._swiglu = swiglu_params(self.spec, p.w13_weight.device)
        self._fused_moe = fm.cutlass_fused_moe

    def forward(self, x: torch.Tensor, topk_weights: torch.Tensor, topk_ids: torch.Tensor) -> torch.Tensor:
        h = self.spec.hidden_size
        xp = pad_dim(x, 1, self._hidden).contiguous()
        ep = {}
        if self.spec.expert_map is not None:
            topk_ids = phantom_expert_ids(topk_ids, self.spec.num_local_experts)
            ep = {"ep_size": 2, "ep_rank": 0}
        out = torch.empty_like(xp)
        kwargs = dict(token_selected_experts=topk_ids.to(torch.int32).contiguous(),
                      token_final_scales=topk_weights.float().contiguous(),
                      fc1_expert_weights=self._w13, fc2_expert_weights=self._w2, output_dtype=x.dtype,
                      quant_scales=self._scales, fc1_expert_biases=self._b13, fc2_expert_biases=self._b2,
                      output=out, **self._swiglu, **ep)
        if self._sm90:
            self._fused_moe(input=xp, use_w4_group_scaling=True, **kwargs)
        else:
            from flashinfer import mxfp8_quantize

            xq, xs = mxfp8_quantize(xp, True)
            self._fused_moe(input=xq, input_sf=xs, use_mxfp8_act_scaling=True, **kwargs)
        return out[:, :h]

