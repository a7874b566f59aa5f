"""The gated activations in plain PyTorch: splitting w13's output by row order, then gating."""

from __future__ import annotations

import torch

from .spec import Activation, ActivationSpec, GateUpOrder


def split_gate_up(h: torch.Tensor, order: GateUpOrder) -> tuple[torch.Tensor, torch.Tensor]:
    """``h [..., 2I]`` (the output of the w13 GEMM) into ``(gate, up)``, each ``[..., I]``."""
    if order is GateUpOrder.INTERLEAVED:
        return h[..., 0::2], h[..., 1::2]
    half = h.shape[-1] // 2
    return h[..., :half], h[..., half:]


def gated_activation(h: torch.Tensor, activation: ActivationSpec, order: GateUpOrder) -> torch.Tensor:
    gate, up = split_gate_up(h, order)
    if activation.kind is Activation.SILU:
        return torch.nn.functional.silu(gate) * up
    gate = gate.clamp(max=activation.limit)
    up = up.clamp(-activation.limit, activation.limit)
    return (up + 1) * gate * torch.sigmoid(activation.alpha * gate)
