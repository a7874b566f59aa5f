"""``flashinfer_trtllm``: FlashInfer's trtllm-gen MXFP4 MoE, Blackwell (SM100) only (ENGINE_NOTES 5.3).

Pure PyTorch (``trtllm_layout``, ``pack_topk``; tested on CPU):

* w13 rows as ``u0, g0, u1, g1, ...``: trtllm-gen's GEMM1 is logically ``[up; gate]`` and
  physically row-interleaved; from gpt-oss's ``g0, u0, ...`` this is vLLM's
  ``swap_every_two_rows``, applied to weights, scales and bias alike;
* H padded to 256, I to 128 (vLLM 0.33), biases fp32;
* the engine's routing packed as ``(expert_id << 16) | bf16 weight bits`` per slot for
  ``trtllm_fp4_block_scale_routed_moe``; -1 ids become the phantom expert E_loc, outside
  ``[local_expert_offset, local_expert_offset + E_loc)``, which the kernel skips.

Then FlashInfer's own row shuffles for the transposed MMA output (the permutation indices
of ``get_w2_permute_indices_with_cache`` with ``epilogue_tile_m = 128``, scales also through
``nvfp4_block_scale_interleave``), exactly as vLLM 0.33 prepares FLASHINFER_TRTLLM_MXFP4_*.
Activations: bf16 (``flashinfer_trtllm``) or MXFP8 via ``mxfp8_quantize``
(``flashinfer_trtllm_mxfp8``).

Never run on hardware here (no Blackwell GPU): ``verified_on`` is empty.
"""

from __future__ import annotations

import dataclasses

import torch

from ..platform import Platform
from ..spec import MoESpec
from ..weights import MoEWeights
from .base import Backend
from .flashinfer_cutlass import flashinfer_problem, swiglu_params
from .layouts import PaddedLayer, RowOrder, pad_dim, pad_layer, phantom_expert_ids

HIDDEN_MULTIPLE = 256
INTERMEDIATE_MULTIPLE = 128
EPILOGUE_TILE_M = 128
#: FlashInfer's routing_method_type for "the ids are given": Renormalize, as vLLM passes it.
ROUTING_RENORMALIZE = 1


def trtllm_layout(weights: MoEWeights, spec: MoESpec) -> PaddedLayer:
    """Rows ``u0, g0, u1, g1, ...``, H padded to 256, I to 128, fp32 biases."""
    p = pad_layer(weights, spec.gate_up_order, RowOrder.UP_GATE_INTERLEAVED,
                  hidden_multiple=HIDDEN_MULTIPLE, intermediate_multiple=INTERMEDIATE_MULTIPLE)
    return dataclasses.replace(p, w13_bias=None if p.w13_bias is None else p.w13_bias.float(),
                               w2_bias=None if p.w2_bias is None else p.w2_bias.float())


def pack_topk(topk_ids: torch.Tensor, topk_weights: torch.Tensor) -> torch.Tensor:
    """int32 ``(id << 16) | bits(bf16(weight))`` per slot (FlashInfer's ``PackedScoreIdx``)."""
    bits = topk_weights.to(torch.bfloat16).view(torch.int16).to(torch.int32) & 0xFFFF
    return (topk_ids.to(torch.int32) << 16) | bits


class FlashInferTrtllmBackend(Backend):
    name = "flashinfer_trtllm"
    summary = "FlashInfer trtllm-gen trtllm_fp4_block_scale_routed_moe, SM100: MXFP4 weights x bf16 activations"
    verified_on = frozenset()
    mxfp8_activations = False

    @classmethod
    def supports(cls, spec: MoESpec, platform: Platform) -> str | None:
        problem = flashinfer_problem(platform)
        if problem:
            return problem
        if platform.family != "sm100":
            return f"needs compute capability 10.0 (Blackwell B200/GB200; trtllm-gen kernels), found {platform.family}"
        if spec.act_dtype != torch.bfloat16:
            return f"needs bfloat16 activations, got {spec.act_dtype}"
        if spec.num_local_experts + 1 >= 2**15:
            return f"packs expert ids in 16 bits, got {spec.num_local_experts} local experts"
        return None

    def prepare(self, weights: MoEWeights) -> None:
        from flashinfer.fp4_quantization import nvfp4_block_scale_interleave
        from flashinfer.fused_moe.core import get_w2_permute_indices_with_cache

        p = trtllm_layout(weights, self.spec)
        cache: dict = {}

        def shuffle(t: torch.Tensor, num_elts_per_sf: int | None = None) -> torch.Tensor:
            """Per expert: FlashInfer's row permutation for the transposed MMA output."""
            rows = []
            for e in range(t.shape[0]):
                x = t[e] if t.dim() == 3 else t[e].reshape(-1, 1)
                idx = get_w2_permute_indices_with_cache(cache, x, EPILOGUE_TILE_M, num_elts_per_sf=num_elts_per_sf)
                x = x[idx.to(x.device)].contiguous()
                rows.append(nvfp4_block_scale_interleave(x) if num_elts_per_sf else x)
            return torch.stack(rows).reshape(t.shape)

        self._w13, self._w2 = shuffle(p.w13_weight), shuffle(p.w2_weight)
        self._s13 = shuffle(p.w13_weight_scale, 16).view(torch.float8_e4m3fn)
        self._s2 = shuffle(p.w2_weight_scale, 16).view(torch.float8_e4m3fn)
        self._b13 = None if p.w13_bias is None else shuffle(p.w13_bias)
        self._b2 = None if p.w2_bias is None else shuffle(p.w2_bias)
        self._hidden, self._intermediate = p.hidden, p.intermediate
        swiglu = swiglu_params(self.spec, p.w13_weight.device)
        self._alpha, self._beta, self._limit = swiglu["swiglu_alpha"], swiglu["swiglu_beta"], swiglu["swiglu_limit"]

    def forward(self, x: torch.Tensor, topk_weights: torch.Tensor, topk_ids: torch.Tensor) -> torch.Tensor:
        from flashinfer import trtllm_fp4_block_scale_routed_moe

        e = self.spec.num_local_experts
        xp = pad_dim(x, 1, self._hidden).contiguous()
        scale = None
        if self.mxfp8_activations:
            from flashinfer import mxfp8_quantize

            xp, scale = mxfp8_quantize(xp, False, alignment=HIDDEN_MULTIPLE)
            scale = scale.view(torch.float8_e4m3fn).reshape(x.shape[0], -1)
        packed = pack_topk(phantom_expert_ids(topk_ids, e), topk_weights)
        out = trtllm_fp4_block_scale_routed_moe(
            topk_ids=packed, routing_bias=None, hidden_states=xp, hidden_states_scale=scale,
            gemm1_weights=self._w13, gemm1_weights_scale=self._s13, gemm1_bias=self._b13,
            gemm1_alpha=self._alpha, gemm1_beta=self._beta, gemm1_clamp_limit=self._limit,
            gemm2_weights=self._w2, gemm2_weights_scale=self._s2, gemm2_bias=self._b2,
            output1_scale_scalar=None, output1_scale_gate_scalar=None, output2_scale_scalar=None,
            num_experts=e + 1, top_k=self.spec.top_k, n_group=None, topk_group=None,
            intermediate_size=self._intermediate, local_expert_offset=0, local_num_experts=e,
            routed_scaling_factor=None, routing_method_type=ROUTING_RENORMALIZE, do_finalize=True)
        out = out[0] if isinstance(out, (list, tuple)) else out
        return out[:, : self.spec.hidden_size].to(x.dtype)


class FlashInferTrtllmMxfp8Backend(FlashInferTrtllmBackend):
    name = "flashinfer_trtllm_mxfp8"
    summary = "FlashInfer trtllm-gen trtllm_fp4_block_scale_routed_moe, SM100: MXFP4 weights x MXFP8 activations"
    mxfp8_activations = True
