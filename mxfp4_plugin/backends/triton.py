"""``triton``: our own MXFP4 MoE kernels (``mxfp4_plugin.kernels.moe``), W4A16 on CUDA.

Weights stay 4-bit and are decoded inside the GEMMs; the activation's constants come from
the spec. Measured on sm90 (H200, BENCHMARKS.md); it runs on any CUDA device of compute
capability 8.0 or newer that Triton supports, but only sm90 has been checked on hardware.
"""

from __future__ import annotations

import torch

from ..kernels.moe_details import tuned_rows
from ..platform import Platform
from ..spec import GateUpOrder, MoESpec
from ..weights import MoEWeights
from .base import Backend

MIN_CAPABILITY = (8, 0)  # fma.rn.bf16x2 in the BF16X2 decode


def layer_key(spec: MoESpec) -> tuple[int, int, int, int]:
    """The layer as the kernels' config table and tuned rows name it: on this rank, after EP and TP."""
    return spec.num_local_experts, spec.top_k, spec.hidden_size, spec.intermediate_size


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

    def __init__(self, spec: MoESpec, platform: Platform) -> None:
        super().__init__(spec, platform)
        self.tuned = tuned_rows.for_layer(tuned_rows.from_env()[1], layer_key(spec))

    @classmethod
    def config_note(cls, spec: MoESpec) -> str | None:
        path, rows = tuned_rows.from_env()
        if path is None:
            return None
        key = layer_key(spec)
        mine = tuned_rows.for_layer(rows, key)
        if not mine:
            layers = sorted({r.layer for r in rows})
            return (f"{tuned_rows.ENV_VAR}={path} has no row for this layer {list(key)} (its layers: "
                    f"{', '.join(str(list(k)) for k in layers) or 'none'}): the shipped table runs")
        counts = ", ".join(f"{r.first}-{r.last}" for r in sorted(mine, key=lambda r: r.first))
        return (f"kernel configs from {tuned_rows.ENV_VAR}={path} for this layer {list(key)} at tokens {counts}, "
                f"the shipped table elsewhere")

    def row_for(self, num_tokens: int):
        """``(config, first, last)``: the launch config ``forward`` runs for this many tokens (a tuned row's, else
        the shipped table's) and the token counts its row covers."""
        from ..kernels.moe_details import configs

        row = tuned_rows.row_at(self.tuned, num_tokens)
        if row is not None:
            return row.config, row.first, row.last
        key = layer_key(self.spec)
        return (configs.select(num_tokens, key), *configs.span(num_tokens, key))

    def prepare(self, weights: MoEWeights) -> None:
        from ..kernels.moe import prepare_experts

        self.experts = prepare_experts(
            weights.w13_weight, weights.w13_weight_scale, weights.w2_weight, weights.w2_weight_scale,
            weights.w13_bias, weights.w2_bias, interleaved=self.spec.gate_up_order is GateUpOrder.INTERLEAVED,
            act_dtype=self.spec.act_dtype)

    def forward(self, x: torch.Tensor, topk_weights: torch.Tensor, topk_ids: torch.Tensor) -> torch.Tensor:
        from ..kernels.moe import fused_moe

        row = tuned_rows.row_at(self.tuned, x.shape[0])
        return fused_moe(x, topk_weights, topk_ids, self.experts, self.spec.activation,
                         config=row.config if row else None)  # None: the shipped table's row
