"""``triton``: our own MXFP4 MoE kernels (``mxfp4_plugin.kernels.moe``), W4A16 on CUDA.

Weights stay 4-bit and are decoded inside the GEMMs; the activation's constants come from
the spec. Measured on sm90 (H200, BENCHMARKS.md); it runs on any CUDA device of compute
capability 8.0 or newer that Triton supports, but only sm90 has been checked on hardware.
"""

from __future__ import annotations

import torch

from ..platform import Platform
from ..spec import GateUpOrder, MoESpec
from ..weights import MoEWeights
from .base import Backend

MIN_CAPABILITY = (8, 0)  # fma.rn.bf16x2 in the BF16X2 decode


class TritonBackend(Backend):
    name = "triton"
    summary = "our Triton kernels: MXFP4 decoded in the GEMM main loop, fused gating and top-k sum"
    #: tests/test_triton_gpu.py passed on an H200 (70 cases); other families are unmeasured.
    verified_on = frozenset({"sm90"})

    @classmethod
    def supports(cls, spec: MoESpec, platform: Platform) -> str | None:
        if platform.device != "cuda":
            return "needs a CUDA GPU (the kernels run on CPU only under the Triton interpreter, for tests)"
        if platform.capability < MIN_CAPABILITY:
            return (f"needs compute capability >= {MIN_CAPABILITY[0]}.{MIN_CAPABILITY[1]} (bf16 MMA and packed "
                    f"bf16 arithmetic), found {platform.capability[0]}.{platform.capability[1]}; "
                    f"only sm90 has been measured")
        if "triton" not in platform.packages:
            return "the triton package is not installed"
        if spec.act_dtype not in (torch.bfloat16, torch.float16):
            return f"activations must be bfloat16 or float16 (W4A16 kernels), the layer uses {spec.act_dtype}"
        return None

    def prepare(self, weights: MoEWeights) -> None:
        from ..kernels.moe import prepare_experts

        self.experts = prepare_experts(
            weights.w13_weight, weights.w13_weight_scale, weights.w2_weight, weights.w2_weight_scale,
            weights.w13_bias, weights.w2_bias, interleaved=self.spec.gate_up_order is GateUpOrder.INTERLEAVED,
            act_dtype=self.spec.act_dtype)

    def forward(self, x: torch.Tensor, topk_weights: torch.Tensor, topk_ids: torch.Tensor) -> torch.Tensor:
        from ..kernels.moe import fused_moe

        return fused_moe(x, topk_weights, topk_ids, self.experts, self.spec.activation)
