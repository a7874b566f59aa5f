"""The benchmark's own driver for OpenAI's ``triton_kernels`` (vLLM's default MXFP4 MoE on
Hopper), used by ``mxfp4-plugin bench`` only while no backend named ``triton_kernels`` is
registered. Once the real backend (``mxfp4_plugin/backends/`` on the backends branch) is merged,
the bench runs that one instead and this module is not used.

Drives API generation 3.5.1 the way vLLM 0.33 does (ENGINE_NOTES 5.1): w13 rows interleaved
(the fused SwiGLU reads pairs), scales' K axis padded to 4 blocks, Hopper value and scale
swizzles, ``split_k = 1``, float32 biases; routing from the engine's top-k ids through a
bitmatrix and ``routing_from_bitmatrix`` (vLLM's path when the engine routes), GEMM1 with the
fused activation, GEMM2 with the router weights and the top-k sum. SiLU layers use a fused
``silu(gate) * up`` on the same interleaved pairs. No expert parallelism.
"""

from __future__ import annotations

import torch

from ..backends.base import Backend
from ..platform import Platform
from ..spec import Activation, GateUpOrder, MoESpec
from ..weights import MoEWeights

_SILU_FN = None


def _silu_pairs_fn():
    """A ``FusedActivation`` function: interleaved (gate, up) pairs -> silu(gate) * up."""
    global _SILU_FN
    if _SILU_FN is None:
        import triton
        import triton.language as tl

        @triton.jit
        def silu_pairs(input, unused):
            gate, up = tl.split(tl.reshape(input, (input.shape[0], input.shape[1] // 2, 2)))
            gate = gate.to(tl.float32)
            return gate / (1.0 + tl.exp(-gate)) * up.to(tl.float32)

        _SILU_FN = silu_pairs
    return _SILU_FN


class OpenAITritonKernelsPeer(Backend):
    name = "triton_kernels"
    summary = "OpenAI triton_kernels matmul_ogs (API 3.5.1), driven as vLLM does (bench-only driver)"

    @classmethod
    def supports(cls, spec: MoESpec, platform: Platform) -> str | None:
        if platform.device != "cuda" or not (9, 0) <= platform.capability < (11, 0):
            return "needs CUDA compute capability 9.x or 10.x (vLLM's gate for triton_kernels)"
        try:
            import triton_kernels.matmul_ogs  # noqa: F401
            import triton_kernels.routing  # noqa: F401
        except ImportError as exc:
            return f"triton_kernels 3.5.1 (matmul_ogs + routing) does not import: {exc}"
        if spec.act_dtype != torch.bfloat16:
            return f"triton_kernels' Hopper MXFP4 path takes bfloat16 activations, the layer uses {spec.act_dtype}"
        if spec.intermediate_size % 64:
            return f"this driver does not pad: intermediate size must be a multiple of 64, got {spec.intermediate_size}"
        if spec.expert_map is not None:
            return "this driver does not handle expert parallelism (-1 ids)"
        return None

    def prepare(self, weights: MoEWeights) -> None:
        from triton_kernels.matmul_ogs import FlexCtx, FnSpecs, FusedActivation, PrecisionConfig
        from triton_kernels.swiglu import swiglu_fn

        w13, s13, b13 = weights.w13_weight, weights.w13_weight_scale, weights.w13_bias
        if self.spec.gate_up_order is GateUpOrder.CONCATENATED:
            w13, s13 = _interleave(w13), _interleave(s13)
            b13 = None if b13 is None else _interleave(b13)
        self.w13, pc13 = _swizzle(w13, s13)
        self.w2, pc2 = _swizzle(weights.w2_weight, weights.w2_weight_scale)
        self.pc13 = PrecisionConfig(weight_scale=pc13, flex_ctx=FlexCtx(rhs_data=_in_flex()))
        self.pc2 = PrecisionConfig(weight_scale=pc2, flex_ctx=FlexCtx(rhs_data=_in_flex()))
        self.b13 = None if b13 is None else b13.float().contiguous()
        self.b2 = None if weights.w2_bias is None else weights.w2_bias.float().contiguous()
        act = self.spec.activation
        if act.kind is Activation.SWIGLU_OAI:
            self.act = FusedActivation(FnSpecs("swiglu", swiglu_fn, ("alpha", "limit")), (act.alpha, act.limit), 2)
        else:
            self.act = FusedActivation(FnSpecs("silu", _silu_pairs_fn(), ("unused",)), (0.0,), 2)

    def forward(self, x: torch.Tensor, topk_weights: torch.Tensor, topk_ids: torch.Tensor) -> torch.Tensor:
        from triton_kernels.matmul_ogs import matmul_ogs
        from triton_kernels.routing import routing_from_bitmatrix
        from triton_kernels.tensor import Bitmatrix

        m, k = topk_ids.shape
        e = self.spec.num_local_experts
        ids = topk_ids.to(torch.int16)
        cols = -(-e // 32)
        bits = torch.zeros((m, cols * 32 + 1), dtype=torch.int64, device=x.device)
        bits.scatter_(1, torch.where(topk_ids < 0, cols * 32, topk_ids).long(), 1)
        words = (bits[:, :-1].view(m, cols, 32) << torch.arange(32, device=x.device)).sum(-1)
        storage = words.to(torch.int32).view(torch.uint32)
        bitmatrix = Bitmatrix(storage, shape=[m, cols * 32], shape_max=[m, None], scratchpad=None)
        gammas = torch.where(topk_ids < 0, -1.0, topk_weights.to(torch.bfloat16).float()).to(torch.bfloat16)
        routing_data, gather, scatter = routing_from_bitmatrix(bitmatrix, gammas, ids, e, k)
        inter = torch.empty((1, m * k, self.spec.intermediate_size), dtype=x.dtype, device=x.device)
        out = torch.empty((1, m, self.spec.hidden_size), dtype=x.dtype, device=x.device)
        matmul_ogs(x, self.w13, self.b13, routing_data, gather_indx=gather, precision_config=self.pc13,
                   fused_activation=self.act, y=inter)
        matmul_ogs(inter.view(m * k, -1), self.w2, self.b2, routing_data, scatter_indx=scatter,
                   precision_config=self.pc2, gammas=routing_data.gate_scal, y=out)
        return out.view(m, -1)


def _interleave(t: torch.Tensor) -> torch.Tensor:
    """[gate; up] rows -> g0, u0, g1, u1, ..."""
    half = t.shape[1] // 2
    return torch.stack((t[:, :half], t[:, half:]), dim=2).flatten(1, 2).contiguous()


def _in_flex():
    from triton_kernels.numerics import InFlexData

    return InFlexData()


def _swizzle(blocks: torch.Tensor, scales: torch.Tensor):
    """vLLM's ``_swizzle_mxfp4`` for SM90 (num_warps=8)."""
    import triton_kernels.matmul_ogs_details.opt_flags as opt_flags
    from triton_kernels.tensor import FP4, convert_layout, wrap_torch_tensor
    from triton_kernels.tensor_details import layout

    value_layout, value_opts = layout.make_default_matmul_mxfp4_w_layout(mx_axis=1)
    scale_layout, scale_opts = layout.make_default_matmul_mxfp4_w_scale_layout(mx_axis=1, num_warps=8)
    if torch.cuda.get_device_capability(blocks.device) == (9, 0):
        opt_flags.update_opt_flags_constraints({"split_k": 1})
        scales = torch.nn.functional.pad(scales, (0, -scales.shape[-1] % 4))
    w = convert_layout(wrap_torch_tensor(blocks.transpose(-2, -1), dtype=FP4), value_layout, **value_opts)
    s = convert_layout(wrap_torch_tensor(scales.transpose(-2, -1)), scale_layout, **scale_opts)
    return w, s
