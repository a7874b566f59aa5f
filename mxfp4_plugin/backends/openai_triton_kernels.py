"""``triton_kernels``: OpenAI's ``matmul_ogs`` MoE (vLLM's default MXFP4 backend on Hopper).

Drives API generation 3.5.1 (``triton_kernels.routing`` + ``matmul_ogs``; the copy that vLLM
0.33's CUDA wheel bundles as ``vllm.third_party.triton_kernels``) the way vLLM does
(ENGINE_NOTES 5.1, /work/notes/triton.md 3):

* prepare, pure PyTorch (``tk_layout``, tested on CPU): w13 rows interleaved ``g0, u0, ...``
  (the fused SwiGLU reads pairs), I zero-padded to a multiple of 64, scale K axis padded to
  a multiple of 4 blocks on Hopper (the HOPPER_SCALE branch reads scales unmasked over
  cdiv(K, 128) tiles), biases fp32, both transposed to ``[E, K, N]``;
  then the library's Hopper value/scale swizzles (``convert_layout``), ``split_k = 1``;
* forward: the routing is rebuilt from the engine's ``topk_ids``/``topk_weights`` (a
  bitmatrix packed in PyTorch, ``pack_bitmatrix``, then ``routing_from_bitmatrix``); ids of
  -1 are left out of the bitmatrix, so their slots get no gather/scatter index and no row;
  GEMM1 gathers and fuses the activation, GEMM2 multiplies by the router weights and sums
  the top-k rows per token. The output starts at zero: a token whose experts are all on
  other ranks gets no row written by the top-k reduction and must read back as zero.

Generations 3.6 (``SparseMatrix``) and 3.8 (``matmul`` + ``RaggedTensorMetadata``) are
detected (``platform.triton_kernels_generation``) and refused by ``supports`` by name.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys

import torch

from ..platform import Platform
from ..spec import Activation, GateUpOrder, MoESpec
from ..weights import MoEWeights
from .base import Backend
from .layouts import NEUTRAL_SCALE, PaddedLayer, pad_dim, pad_layer, round_up

#: The API generations this module drives; others are detected and refused.
SUPPORTED_GENERATIONS = ("3.5.1",)
#: vLLM rounds I up to 64 for this backend (ENGINE_NOTES 3.10); H is left as is.
INTERMEDIATE_MULTIPLE = 64
#: Hopper: the scale tensor's K axis (blocks of 32) padded to a multiple of this.
HOPPER_SCALE_K_MULTIPLE = 4
#: Warps per CTA assumed by the Hopper scale swizzle (vLLM uses 8).
NUM_WARPS = 8
FAMILIES = ("sm90", "sm100")


def tk_layout(weights: MoEWeights, order: GateUpOrder, *, hopper: bool) -> PaddedLayer:
    """The pure-PyTorch part of the conversion, as a ``PaddedLayer`` whose weights and scales
    are transposed views ``[E, K/2, N]`` and ``[E, K/32 (+Hopper pad), N]`` (quantization axis
    on dim 1, stride 1: what ``wrap_torch_tensor``/``convert_layout`` take) and biases fp32."""
    p = pad_layer(weights, order, GateUpOrder.INTERLEAVED, intermediate_multiple=INTERMEDIATE_MULTIPLE)
    s13, s2 = p.w13_weight_scale, p.w2_weight_scale
    if hopper:
        s13 = pad_dim(s13, 2, round_up(s13.shape[2], HOPPER_SCALE_K_MULTIPLE), NEUTRAL_SCALE)
        s2 = pad_dim(s2, 2, round_up(s2.shape[2], HOPPER_SCALE_K_MULTIPLE), NEUTRAL_SCALE)
    return dataclasses.replace(
        p, w13_weight=p.w13_weight.transpose(1, 2), w13_weight_scale=s13.transpose(1, 2),
        w2_weight=p.w2_weight.transpose(1, 2), w2_weight_scale=s2.transpose(1, 2),
        w13_bias=None if p.w13_bias is None else p.w13_bias.float().contiguous(),
        w2_bias=None if p.w2_bias is None else p.w2_bias.float().contiguous())


def pack_bitmatrix(topk_ids: torch.Tensor, num_experts: int) -> torch.Tensor:
    """``topk_ids [M, k]`` (local ids, -1 = none) -> int32 ``[M, ceil(E/32)]`` words in which
    bit ``e % 32`` of word ``e // 32`` is set iff the token is routed to local expert ``e``
    (triton_kernels' ``Bitmatrix`` storage, viewed as uint32 by the caller). No host sync:
    -1 ids are sent to a spare column that is dropped."""
    m = topk_ids.shape[0]
    cols = -(-num_experts // 32)
    spare = cols * 32
    ids = torch.where(topk_ids < 0, torch.full_like(topk_ids, spare), topk_ids).long()
    onehot = torch.zeros(m, spare + 1, dtype=torch.bool, device=topk_ids.device)
    onehot.scatter_(1, ids, True)
    bits = torch.ones(32, dtype=torch.int64, device=topk_ids.device) << torch.arange(32, device=topk_ids.device)
    words = (onehot[:, :spare].view(m, cols, 32).long() * bits).sum(-1)
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)


def import_triton_kernels(root: str):
    """The real ``triton_kernels`` package, importable as ``triton_kernels`` (its modules import
    each other by that name). vLLM's bundled copy is aliased exactly as vLLM itself does."""
    if root != "triton_kernels" and "triton_kernels" not in sys.modules:
        try:
            from vllm.utils.import_utils import import_triton_kernels as vllm_import
            vllm_import()
        except ImportError:
            sys.modules["triton_kernels"] = importlib.import_module(root)
    tk = importlib.import_module("triton_kernels")
    importlib.import_module("triton_kernels.matmul_ogs")  # fails on the unrelated PyPI namesake
    return tk


class TritonKernelsBackend(Backend):
    name = "triton_kernels"
    summary = ("OpenAI triton_kernels matmul_ogs (API 3.5.1, as bundled by vLLM 0.33): gathered GEMM with "
               "fused activation, scattered GEMM with fused top-k sum; Hopper MX layouts")
    #: tests/test_backends_gpu.py passed on an H200 (2026-11-22: 39 cases, rel. err < 1e-2 vs reference).
    verified_on = frozenset({"sm90"})

    @classmethod
    def supports(cls, spec: MoESpec, platform: Platform) -> str | None:
        if platform.capability is None:
            return "needs a CUDA GPU of compute capability 9.x or 10.x"
        if platform.family not in FAMILIES:
            return f"needs compute capability 9.0 (Hopper) or 10.x (Blackwell), found {platform.family}"
        if "triton" not in platform.packages:
            return "needs the triton package, not installed"
        if "triton_kernels" not in platform.packages:
            return ("needs OpenAI's triton_kernels (bundled in vLLM's CUDA wheel as vllm.third_party.triton_kernels, "
                    "or python/triton_kernels of triton-lang/triton); not found (PyPI 'triton-kernels' is unrelated)")
        found = platform.versions.get("triton_kernels", "unknown")
        if found.split()[0] not in SUPPORTED_GENERATIONS:
            return (f"triton_kernels API generation {found} found; this backend drives generation(s) "
                    f"{', '.join(SUPPORTED_GENERATIONS)} only (3.6's SparseMatrix routing and 3.8's matmul/"
                    f"RaggedTensorMetadata are not wired up)")
        if spec.act_dtype != torch.bfloat16:
            return f"needs bfloat16 activations (the MXFP4 weights are upcast to bf16 in-kernel), got {spec.act_dtype}"
        if spec.top_k & (spec.top_k - 1):
            return f"needs a power-of-two top_k (3.5.1 routing sorts N_EXPTS_ACT * BLOCK_M entries), got {spec.top_k}"
        return None

    def prepare(self, weights: MoEWeights) -> None:
        root = self.platform.versions.get("triton_kernels", "3.5.1 at triton_kernels").split(" at ")[-1]
        import_triton_kernels(root)
        from triton_kernels.matmul_ogs import FlexCtx, FnSpecs, FusedActivation, PrecisionConfig, matmul_ogs
        from triton_kernels.matmul_ogs_details import opt_flags
        from triton_kernels.numerics import InFlexData
        from triton_kernels.routing import routing_from_bitmatrix
        from triton_kernels.tensor import FP4, Bitmatrix, convert_layout, wrap_torch_tensor
        from triton_kernels.tensor_details import layout

        hopper = self.platform.family == "sm90"
        if hopper:
            # split_k > 1 at small M switches to an fp32 scratch + reduce and is slower (vLLM PR #30528).
            opt_flags.update_opt_flags_constraints({"split_k": 1})
        else:
            # Native MXFP on Blackwell needs the persistent kernel (vLLM does the same).
            opt_flags.update_opt_flags_constraints({"is_persistent": True, "epilogue_subtile": 1})
        t = tk_layout(weights, self.spec.gate_up_order, hopper=hopper)
        value_layout, value_opts = layout.make_default_matmul_mxfp4_w_layout(mx_axis=1)
        scale_layout, scale_opts = layout.make_default_matmul_mxfp4_w_scale_layout(mx_axis=1, num_warps=NUM_WARPS)

        def swizzle(w, s):
            w = convert_layout(wrap_torch_tensor(w, dtype=FP4), value_layout, **value_opts)
            s = convert_layout(wrap_torch_tensor(s), scale_layout, **scale_opts)
            return w, PrecisionConfig(weight_scale=s, flex_ctx=FlexCtx(rhs_data=InFlexData()))

        self._w13, self._pc13 = swizzle(t.w13_weight, t.w13_weight_scale)
        self._w2, self._pc2 = swizzle(t.w2_weight, t.w2_weight_scale)
        self._b13, self._b2 = t.w13_bias, t.w2_bias
        self._intermediate = t.intermediate
        act = self.spec.activation
        if act.kind is Activation.SWIGLU_OAI:
            from triton_kernels.swiglu import swiglu_fn
            self._act = FusedActivation(FnSpecs("swiglu", swiglu_fn, ("alpha", "limit")), (act.alpha, act.limit), 2)
        else:
            from ._tk_activations import silu_and_mul_fn
            self._act = FusedActivation(FnSpecs("mxfp4_plugin_silu_and_mul", silu_and_mul_fn, ()), (), 2)
        self._matmul_ogs, self._routing_from_bitmatrix, self._bitmatrix = matmul_ogs, routing_from_bitmatrix, Bitmatrix

    def routing(self, topk_weights: torch.Tensor, topk_ids: torch.Tensor):
        """``(RoutingData, GatherIndx, ScatterIndx)`` for local ids with -1 = not on this rank."""
        e, (m, k) = self.spec.num_local_experts, topk_ids.shape
        words = pack_bitmatrix(topk_ids, e)
        bitmatrix = self._bitmatrix(words.view(torch.uint32), shape=[m, words.shape[1] * 32], shape_max=[m, None],
                                    scratchpad=None)
        # As vLLM: slots with no local expert carry weight -1 and id -1 (int16); neither enters a row.
        scal = torch.where(topk_ids < 0, torch.full_like(topk_weights, -1.0, dtype=torch.float32),
                           topk_weights.float())
        return self._routing_from_bitmatrix(bitmatrix, scal, topk_ids.to(torch.int16), e, k)

    def forward(self, x: torch.Tensor, topk_weights: torch.Tensor, topk_ids: torch.Tensor) -> torch.Tensor:
        m, k, h = x.shape[0], topk_ids.shape[1], self.spec.hidden_size
        out = torch.zeros((1, m, h), dtype=x.dtype, device=x.device)
        if m == 0:
            return out.view(m, h)
        routing_data, gather, scatter = self.routing(topk_weights, topk_ids)
        inter = torch.empty((1, m * k, self._intermediate), dtype=x.dtype, device=x.device)
        self._matmul_ogs(x.contiguous(), self._w13, self._b13, routing_data, gather_indx=gather,
                         precision_config=self._pc13, fused_activation=self._act, y=inter)
        self._matmul_ogs(inter.view(m * k, self._intermediate), self._w2, self._b2, routing_data,
                         scatter_indx=scatter, precision_config=self._pc2, gammas=routing_data.gate_scal, y=out)
        return out.view(m, h)

