"""Pure-PyTorch layout steps that the third-party backends share: gate/up row orders and
zero padding of one layer's canonical tensors.

Every function here is a row permutation, a concatenation or a pad: exact, device-agnostic,
and unit-tested on CPU against hand-written layouts (``tests/test_backend_layouts.py``).
The kernels' own swizzles (triton_kernels' Hopper layouts, FlashInfer's interleave and
shuffle helpers, Marlin's repack) stay in the libraries and are called at ``prepare``.

Row orders of the fused gate/up weight w13 (and its scales and bias), along dim 1:

* ``GateUpOrder.INTERLEAVED``  ``g0, u0, g1, u1, ...`` (gpt-oss, triton_kernels, vLLM Marlin)
* ``GateUpOrder.CONCATENATED`` ``g0..g(I-1), u0..u(I-1)`` (``[w1; w3]``)
* ``UP_GATE_HALVES``           ``u0..u(I-1), g0..g(I-1)`` (FlashInfer CUTLASS, ``[w3; w1]``)
* ``UP_GATE_INTERLEAVED``      ``u0, g0, u1, g1, ...`` (FlashInfer trtllm-gen)
"""

from __future__ import annotations

import dataclasses
import enum

import torch

from ..mx import BLOCK_SIZE, E8M0_BIAS
from ..spec import GateUpOrder
from ..weights import MoEWeights


class RowOrder(str, enum.Enum):
    """Every w13 row order some kernel consumes; the first two are the canonical ones."""

    INTERLEAVED = "interleaved"
    CONCATENATED = "concatenated"
    UP_GATE_HALVES = "up_gate_halves"
    UP_GATE_INTERLEAVED = "up_gate_interleaved"


def _as_row_order(order: GateUpOrder | RowOrder) -> RowOrder:
    return RowOrder(order.value if isinstance(order, GateUpOrder) else order)


def split_gate_up(t: torch.Tensor, order: GateUpOrder | RowOrder, dim: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ``t`` along ``dim`` (2I of them) in ``order`` -> ``(gate, up)``, I rows each."""
    order = _as_row_order(order)
    if t.shape[dim] % 2:
        raise ValueError(f"gate/up rows: expected an even size along dim {dim}, got shape {tuple(t.shape)}")
    if order in (RowOrder.INTERLEAVED, RowOrder.UP_GATE_INTERLEAVED):
        pairs = t.unflatten(dim, (-1, 2))
        first, second = pairs.select(dim + 1, 0), pairs.select(dim + 1, 1)
    else:
        first, second = t.chunk(2, dim=dim)
    return (first, second) if order in (RowOrder.INTERLEAVED, RowOrder.CONCATENATED) else (second, first)


def join_gate_up(gate: torch.Tensor, up: torch.Tensor, order: GateUpOrder | RowOrder, dim: int = 1) -> torch.Tensor:
    """The inverse of ``split_gate_up``: a new contiguous tensor with rows in ``order``."""
    order = _as_row_order(order)
    first, second = (gate, up) if order in (RowOrder.INTERLEAVED, RowOrder.CONCATENATED) else (up, gate)
    if order in (RowOrder.INTERLEAVED, RowOrder.UP_GATE_INTERLEAVED):
        return torch.stack((first, second), dim=dim + 1).flatten(dim, dim + 1).contiguous()
    return torch.cat((first, second), dim=dim).contiguous()


def reorder_gate_up(t: torch.Tensor, source: GateUpOrder | RowOrder, target: GateUpOrder | RowOrder,
                    dim: int = 1) -> torch.Tensor:
    """Rows of ``t`` from ``source`` order to ``target`` order (a copy, even when equal)."""
    return join_gate_up(*split_gate_up(t, source, dim), target, dim)


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def pad_dim(t: torch.Tensor, dim: int, size: int, value: float = 0) -> torch.Tensor:
    """``t`` grown along ``dim`` to ``size`` with ``value`` at the end (no copy when already there)."""
    dim = dim % t.dim()
    extra = size - t.shape[dim]
    if extra < 0:
        raise ValueError(f"pad: dim {dim} of shape {tuple(t.shape)} is already larger than {size}")
    if extra == 0:
        return t
    pad = [0, 0] * (t.dim() - dim - 1) + [0, extra]
    return torch.nn.functional.pad(t, pad, value=value)


#: Scale byte written into padding: 2**0. Padded weights are zero, so any finite scale
#: gives exactly zero; the neutral one keeps dequantized padding at +-0 for every kernel.
NEUTRAL_SCALE = E8M0_BIAS


@dataclasses.dataclass(frozen=True)
class PaddedLayer:
    """One layer's canonical tensors after zero padding, in one gate/up row order.

    ``hidden``/``intermediate`` are the padded sizes; padded weights and biases are zero and
    padded scales are ``NEUTRAL_SCALE``, so the padded rows and columns contribute exactly
    nothing (every gated activation here maps a zero gate and up to zero). A backend may
    hand on its own orientation of the same tensors (triton_kernels: transposed views).
    """

    w13_weight: torch.Tensor
    w13_weight_scale: torch.Tensor
    w2_weight: torch.Tensor
    w2_weight_scale: torch.Tensor
    w13_bias: torch.Tensor | None
    w2_bias: torch.Tensor | None
    hidden: int
    intermediate: int
    order: RowOrder


def pad_layer(weights: MoEWeights, source: GateUpOrder, target: GateUpOrder | RowOrder, *,
              hidden_multiple: int = 1, intermediate_multiple: int = 1) -> PaddedLayer:
    """Pad H and I up to the given multiples and put the w13 rows in ``target`` order.

    Each of gate and up is padded from I to I' rows on its own (so interleaved padding adds
    zero (g, u) pairs at the end and concatenated padding adds zeros at the end of each half).
    """
    e, two_i, half_h = weights.w13_weight.shape
    h, i = 2 * half_h, two_i // 2
    hp, ip = round_up(h, max(hidden_multiple, 1)), round_up(i, max(intermediate_multiple, 1))
    if hp % BLOCK_SIZE or ip % BLOCK_SIZE:
        raise ValueError(f"pad_layer: padded sizes must stay multiples of {BLOCK_SIZE}, got H={hp}, I={ip}")

    def w13(t: torch.Tensor, value: float, k_size: int | None) -> torch.Tensor:
        gate, up = split_gate_up(t, source)
        gate, up = pad_dim(gate, 1, ip, value), pad_dim(up, 1, ip, value)
        if k_size is not None:
            gate, up = pad_dim(gate, 2, k_size, value), pad_dim(up, 2, k_size, value)
        return join_gate_up(gate, up, target)

    def w2(t: torch.Tensor, value: float, k_size: int | None) -> torch.Tensor:
        t = pad_dim(t, 1, hp, value)
        return (pad_dim(t, 2, k_size, value) if k_size is not None else t).contiguous()

    return PaddedLayer(
        w13_weight=w13(weights.w13_weight, 0, hp // 2),
        w13_weight_scale=w13(weights.w13_weight_scale, NEUTRAL_SCALE, hp // BLOCK_SIZE),
        w2_weight=w2(weights.w2_weight, 0, ip // 2),
        w2_weight_scale=w2(weights.w2_weight_scale, NEUTRAL_SCALE, ip // BLOCK_SIZE),
        w13_bias=None if weights.w13_bias is None else w13(weights.w13_bias, 0, None),
        w2_bias=None if weights.w2_bias is None else w2(weights.w2_bias, 0, None),
        hidden=hp, intermediate=ip, order=_as_row_order(target))


def phantom_expert_ids(topk_ids: torch.Tensor, num_local_experts: int) -> torch.Tensor:
    """Local ids with -1 (expert on another rank) replaced by ``num_local_experts``: an expert
    id that kernels taking a global id space of ``num_local_experts + 1`` experts, of which
    the first ``num_local_experts`` live here, skip as "not on this rank"."""
    return torch.where(topk_ids < 0, torch.full_like(topk_ids, num_local_experts), topk_ids)
