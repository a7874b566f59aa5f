"""Our MXFP4 Mixture-of-Experts layer in Triton (W4A16): the public API.

    experts = prepare_experts(w13, w13_scale, w2, w2_scale, w13_bias, w2_bias, interleaved=True)
    out = fused_moe(x, topk_weights, topk_ids, experts, activation)

* ``prepare_experts``: once per layer; the canonical MXFP4 tensors (``mxfp4_plugin.weights``)
  into the kernel's layout (``moe_details/layout.py``): gate rows then up rows, on the GPU
  the BF16X2 bit order within each 32-bit word; biases to float32. Weights stay 4-bit and
  unpadded (K only needs to be a multiple of 32); scale rows start 16 bytes apart.
* ``fused_moe``: ``x [M, H]`` (bf16 or fp16), ``topk_weights [M, k]``, ``topk_ids [M, k]``
  (local expert ids; -1 = on another rank, contributes nothing) -> ``[M, H]`` in x's dtype.
  Decode sizes take three launches (GEMM1 with bias and the gated activation, GEMM2 with bias
  and router weight, the top-k sum), a fourth when GEMM1 is split over K (the splits' sum, bias
  and gating: more programs for a handful of pairs); larger ones group pairs by expert first
  (``configs.py``), and a GEMM whose config launches tails apart runs twice (the blocks with a
  tail in the second launch).
  No host synchronisation and no data-dependent sizes: safe to capture in a CUDA graph. On Hopper
  and later the GEMMs, gating and top-k sum launch with programmatic dependent launch
  (``_pdl_options``): each one's programs are resident while the previous kernel finishes.

Under the Triton interpreter (``TRITON_INTERPRET=1``, CPU tensors) the same kernels run with
float32 MMA operands and the NIBBLES layout, so CI checks their numerics without a GPU.
"""

from __future__ import annotations

import dataclasses
import os

import torch
import triton
import triton.language as tl

from mxfp4_plugin import mx
from mxfp4_plugin.spec import Activation, ActivationSpec

from .moe_details import configs, gemm, routing
from .moe_details.configs import GemmConfig, MoEConfig
from .moe_details.dequant import FOLD_RANGE
from .moe_details.layout import ValueLayout, bytes_after, concatenate_gate_up, to_kernel_layout, with_aligned_rows

ACT_DTYPES = (torch.bfloat16, torch.float16)
REDUCE_BLOCK = 1024
GATE_BLOCK = 1024


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def default_layout(device: torch.device | str, act_dtype: torch.dtype) -> ValueLayout:
    """BF16X2 (inline PTX decode) for bf16 on a GPU; NIBBLES elsewhere."""
    on_gpu = torch.device(device).type == "cuda" and not interpreting()
    return ValueLayout.BF16X2 if on_gpu and act_dtype == torch.bfloat16 else ValueLayout.NIBBLES


@dataclasses.dataclass(frozen=True)
class ExpertWeights:
    """One layer's experts in the kernel's layout (see ``moe_details/layout.py``)."""

    w13: torch.Tensor  # uint8 [E, 2I, H/2]: gate rows, then up rows
    w13_scale: torch.Tensor  # uint8 [E, 2I, H/32], rows 16 bytes apart (layout.with_aligned_rows)
    w2: torch.Tensor  # uint8 [E, H, I/2]
    w2_scale: torch.Tensor  # uint8 [E, H, I/32], rows 16 bytes apart
    w13_bias: torch.Tensor | None  # float32 [E, 2I], gate then up
    w2_bias: torch.Tensor | None  # float32 [E, H]
    hidden: int
    intermediate: int
    layout: ValueLayout
    fold13: bool = False  # every w13 scale byte in dequant.FOLD_RANGE: decode with one multiply
    fold2: bool = False  # the same for w2

    @property
    def num_experts(self) -> int:
        return self.w13.shape[0]

    def nbytes_per_expert(self) -> int:
        tensors = [self.w13, self.w13_scale, self.w2, self.w2_scale, self.w13_bias, self.w2_bias]
        return sum(t[0].numel() * t.element_size() for t in tensors if t is not None)


def prepare_experts(w13: torch.Tensor, w13_scale: torch.Tensor, w2: torch.Tensor, w2_scale: torch.Tensor,
                    w13_bias: torch.Tensor | None = None, w2_bias: torch.Tensor | None = None, *,
                    interleaved: bool, layout: ValueLayout | None = None,
                    act_dtype: torch.dtype = torch.bfloat16) -> ExpertWeights:
    """Canonical tensors (``w13 [E, 2I, H/2]``, ``w13_scale [E, 2I, H/32]``, ``w2 [E, H, I/2]``,
    ``w2_scale [E, H, I/32]``, biases ``[E, 2I]``, ``[E, H]``) -> ``ExpertWeights``.
    ``interleaved``: w13's rows (and bias) are ``g0, u0, g1, u1, ...`` rather than ``[gate; up]``."""
    if w13.dim() != 3 or w2.dim() != 3:
        raise ValueError(f"w13, w2: expected 3-D [experts, rows, K/2] tensors, got {tuple(w13.shape)} and "
                         f"{tuple(w2.shape)}")
    e, two_i, half_h = w13.shape
    hidden, intermediate = half_h * 2, two_i // 2
    if two_i % 2 or tuple(w2.shape) != (e, hidden, intermediate // 2):
        raise ValueError(f"w2: expected shape {(e, hidden, intermediate // 2)} to match w13 {tuple(w13.shape)}, "
                         f"got {tuple(w2.shape)}")
    mx.validate(w13, w13_scale, name="w13", reduction_size=hidden)
    mx.validate(w2, w2_scale, name="w2", reduction_size=intermediate)
    if (w13_bias is None) != (w2_bias is None):
        raise ValueError("w13_bias, w2_bias: give both or neither")
    if w13_bias is not None and (tuple(w13_bias.shape) != (e, two_i) or tuple(w2_bias.shape) != (e, hidden)):
        raise ValueError(f"w13_bias, w2_bias: expected shapes {(e, two_i)} and {(e, hidden)}, got "
                         f"{tuple(w13_bias.shape)} and {tuple(w2_bias.shape)}")
    layout = ValueLayout(layout) if layout is not None else default_layout(w13.device, act_dtype)
    w13_k = to_kernel_layout(concatenate_gate_up(w13, interleaved), layout)
    w13_s = with_aligned_rows(concatenate_gate_up(w13_scale, interleaved))
    w2_k, w2_s = to_kernel_layout(w2, layout), with_aligned_rows(w2_scale)
    b13 = None if w13_bias is None else concatenate_gate_up(w13_bias.float(), interleaved)
    b2 = None if w2_bias is None else w2_bias.float().contiguous()
    fold = layout is ValueLayout.BF16X2
    return ExpertWeights(w13_k, w13_s, w2_k, w2_s, b13, b2, hidden, intermediate, layout,
                         fold and _foldable(w13_s), fold and _foldable(w2_s))


def _foldable(scales: torch.Tensor) -> bool:
    """Whether every scale byte lies in ``dequant.FOLD_RANGE`` (one host sync, at prepare time)."""
    low, high = FOLD_RANGE
    return bool(((scales >= low) & (scales <= high)).all())


def fused_moe(x: torch.Tensor, topk_weights: torch.Tensor, topk_ids: torch.Tensor, experts: ExpertWeights,
              activation: ActivationSpec, *, config: MoEConfig | None = None) -> torch.Tensor:
    """The weighted sum over each token's top-k experts, ``[M, H]`` in ``x``'s dtype."""
    _check(x, topk_weights, topk_ids, experts)
    m, k = topk_ids.shape
    if m == 0:
        return x.new_empty((0, experts.hidden))
    if config is None:
        config = table_config(m, k, experts)
    x = x.contiguous()
    ids = topk_ids.reshape(-1).contiguous()
    gammas = topk_weights.reshape(-1).contiguous()
    num_pairs = m * k
    act = torch.empty((num_pairs, experts.intermediate), dtype=x.dtype, device=x.device)
    out = torch.empty((m, experts.hidden), dtype=x.dtype, device=x.device)
    common = _common_constexprs(x.dtype, experts, config)
    pdl = _pdl_options(x.device)
    if config.grouped:
        groups = routing.group_by_expert(ids, experts.num_experts, config.block_m, config.tail_m)
        blocks, bookkeeping = groups.max_blocks, (groups.sorted_pairs, groups.block_expert, groups.block_rows)
    else:
        blocks, bookkeeping = num_pairs, (ids, ids, ids)  # unused when not grouped
    split_k = config.gemm2.split_k
    partials = x.dtype if config.partials_in_act_dtype else torch.float32
    y = torch.empty((split_k, num_pairs, experts.hidden), dtype=partials, device=x.device)
    _gemm1(x, experts, act, ids, bookkeeping, blocks, k, activation, config, common, pdl)
    _gemm2(act, experts, y, ids, gammas, bookkeeping, blocks, config, common, pdl)
    grid = (m, triton.cdiv(experts.hidden, REDUCE_BLOCK))
    gemm.reduce_topk_kernel[grid](y, y.stride(0), y.stride(1), ids, out, out.stride(0), k, experts.hidden,
                                  SPLIT_K=split_k, SLOTS=triton.next_power_of_2(k), BLOCK=REDUCE_BLOCK, num_warps=4,
                                  **pdl)
    return out


def table_config(num_tokens: int, top_k: int, experts: ExpertWeights) -> MoEConfig:
    """The row of ``configs.TABLE`` that ``fused_moe`` runs for this many tokens on this layer."""
    return configs.select(num_tokens, (experts.num_experts, top_k, experts.hidden, experts.intermediate))


def _common_constexprs(act_dtype: torch.dtype, experts: ExpertWeights, config: MoEConfig) -> dict:
    if interpreting():
        if experts.layout is not ValueLayout.NIBBLES:
            raise ValueError(f"experts.layout: the Triton interpreter runs the {ValueLayout.NIBBLES.value} layout "
                             f"only (BF16X2 decodes with inline PTX), got {experts.layout.value}")
        dot_dtype, precision = torch.float32, "ieee"
    else:
        dot_dtype, precision = act_dtype, "tf32"  # precision applies to float32 operands only
    return {"LAYOUT": 1 if experts.layout is ValueLayout.BF16X2 else 0,
            "DOT_DTYPE": _tl_dtype(dot_dtype), "PRECISION": precision,
            "GROUPED": config.grouped, "BLOCK_M": config.block_m, "SMALL_M": config.small_m,
            "TAIL_M": config.tail_m}


def _pdl_options(device: torch.device) -> dict:
    """Programmatic dependent launch for the layer's GEMMs, gating and top-k sum on sm90+ GPUs: each
    kernel's programs launch while the previous kernel runs its last wave and wait in the kernel
    (``gemm._after_prior_kernels``) until its writes are visible, which hides the launch gaps between
    the layer's dependent kernels (3-7 of them). Off under the interpreter and before Hopper."""
    on = device.type == "cuda" and not interpreting() and torch.cuda.get_device_capability(device)[0] >= 9
    return {"PDL": on, "launch_pdl": on}


def _weight_args(blocks: torch.Tensor, scales: torch.Tensor, bias: torch.Tensor | None) -> tuple:
    """A GEMM kernel's weight operands: the codes as int32 words, scales, bias (the scales stand
    in, never read, when there is none) and their strides, in the kernels' argument order."""
    words = blocks.view(torch.int32)
    if words.stride(1) % 4 or words.stride(0) % 4:
        raise ValueError(f"weights: expected rows of whole 16-byte quads (K a multiple of 32), got word strides "
                         f"{tuple(words.stride())}")
    b = bias if bias is not None else scales
    return (words, scales, b, words.stride(0), words.stride(1) // 4, scales.stride(0), scales.stride(1), b.stride(0))


def _launch_options(c: GemmConfig, common: dict, fold: bool, pdl: dict, k: int, scales: torch.Tensor) -> dict:
    """``k``: the GEMM's K; a multiple of the K step (``block_k + block_k2``) lets the loop load weight words without
    masks (``EVEN_K``). Its scale loads need none where ``scales`` can be read as far past the last scale as the
    last step's prefetch reaches: a step's scales (``step / 32`` bytes) with whole steps, two without
    (``SCALES_PAST_K``: ``layout.SCALE_SLACK``, in every ``prepare_experts`` result; else they are masked)."""
    cap = {} if c.maxnreg is None else {"maxnreg": c.maxnreg}  # only when set: uncapped configs launch as before
    step = c.block_k + c.block_k2
    even = k % step == 0
    return dict(BLOCK_N=c.block_n, BLOCK_K=c.block_k, BLOCK_K2=c.block_k2, WEIGHTS_AS_A=c.weights_as_a,
                PREFETCH_X=c.prefetch_x, SCALES_AT_LOAD=c.scales_at_load, num_warps=c.num_warps,
                num_stages=c.num_stages, FOLD=fold, EVEN_K=even,
                SCALES_PAST_K=bytes_after(scales) >= (1 if even else 2) * step // 32, **common, **pdl, **cap)


def _gemm1(x, experts, act, ids, bookkeeping, blocks, k, activation, config, common, pdl):
    """GEMM1 into ``act``; split over K, into float32 partial sums first, then ``gate_kernel``."""
    split_k = config.gemm1.split_k
    has_bias = int(experts.w13_bias is not None)
    gating = (1 if activation.kind is Activation.SWIGLU_OAI else 0, float(activation.alpha or 0.0),
              float(activation.limit or 0.0))
    out = act
    if split_k > 1:
        out = torch.empty((split_k, act.shape[0], 2 * experts.intermediate), dtype=torch.float32, device=x.device)
    for launch, tail_pass in _launches(config.gemm1):
        grid = (blocks * triton.cdiv(experts.intermediate, launch.block_n), split_k)
        gemm.gemm1_kernel[grid](
            x, x.stride(0), *_weight_args(experts.w13, experts.w13_scale, experts.w13_bias),
            out, out.stride(0) if split_k > 1 else 0, out.stride(-2), ids, *bookkeeping,
            k, experts.intermediate, experts.hidden, has_bias, *gating, JOINT=launch.joint, SPLIT_K=split_k,
            TAIL_PASS=tail_pass,
            **_launch_options(launch, common, experts.fold13, pdl, experts.hidden, experts.w13_scale))
    if split_k > 1:
        b = experts.w13_bias if experts.w13_bias is not None else out
        grid = (act.shape[0], triton.cdiv(experts.intermediate, GATE_BLOCK))
        gemm.gate_kernel[grid](out, out.stride(0), out.stride(1), b, b.stride(0), ids, act, act.stride(0),
                               experts.intermediate, has_bias, *gating, SPLIT_K=split_k, BLOCK=GATE_BLOCK,
                               num_warps=4, **pdl)


def _gemm2(act, experts, y, ids, gammas, bookkeeping, blocks, config, common, pdl):
    for launch, tail_pass in _launches(config.gemm2):
        grid = (blocks * triton.cdiv(experts.hidden, launch.block_n), config.gemm2.split_k)
        gemm.gemm2_kernel[grid](
            act, act.stride(0), *_weight_args(experts.w2, experts.w2_scale, experts.w2_bias),
            y, y.stride(0), y.stride(1), ids, gammas, *bookkeeping,
            experts.hidden, experts.intermediate, int(experts.w2_bias is not None),
            SPLIT_K=config.gemm2.split_k, TAIL_PASS=tail_pass,
            **_launch_options(launch, common, experts.fold2, pdl, experts.intermediate, experts.w2_scale))


def _launches(c: GemmConfig) -> tuple[tuple[GemmConfig, int], ...]:
    """``(config, the kernel's TAIL_PASS)`` per launch: every block in one launch, or every block but
    those with a tail, then those in a launch of their own config (``GemmConfig.tail_launch``)."""
    return ((c, 1), (c.tail_launch, 2)) if c.tail_launch is not None else ((c, 0),)


def _tl_dtype(dtype: torch.dtype):
    return {torch.float32: tl.float32, torch.bfloat16: tl.bfloat16, torch.float16: tl.float16}[dtype]


def _check(x: torch.Tensor, topk_weights: torch.Tensor, topk_ids: torch.Tensor, experts: ExpertWeights) -> None:
    if x.dim() != 2 or x.shape[1] != experts.hidden:
        raise ValueError(f"x: expected shape [tokens, {experts.hidden}], got {tuple(x.shape)}")
    if x.dtype not in ACT_DTYPES:
        raise TypeError(f"x: expected dtype bfloat16 or float16, got {x.dtype}")
    if topk_ids.dim() != 2 or topk_ids.shape[0] != x.shape[0]:
        raise ValueError(f"topk_ids: expected shape [{x.shape[0]}, top_k], got {tuple(topk_ids.shape)}")
    if tuple(topk_weights.shape) != tuple(topk_ids.shape):
        raise ValueError(f"topk_weights: expected shape {tuple(topk_ids.shape)} (as topk_ids), "
                         f"got {tuple(topk_weights.shape)}")
    if topk_ids.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"topk_ids: expected int32 or int64, got {topk_ids.dtype}")
    if not topk_weights.is_floating_point():
        raise TypeError(f"topk_weights: expected a floating-point dtype, got {topk_weights.dtype}")
    for name, t in (("topk_weights", topk_weights), ("topk_ids", topk_ids), ("experts.w13", experts.w13)):
        if t.device != x.device:
            raise ValueError(f"{name}: expected device {x.device} (as x), got {t.device}")
