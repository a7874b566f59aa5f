"""The canonical parameter set of one MoE layer, in the checkpoint's layout.

Engines allocate these (names, shapes, dtypes) and fill them with their own loaders;
backends receive them, checked, as ``MoEWeights`` and convert them once.

Layout (per local expert, rows are outputs, K packed last, as the gpt-oss checkpoint):
``w13_weight [E, 2I, H/2]`` and ``w13_weight_scale [E, 2I, H/32]`` (gate/up rows in the
spec's order), ``w2_weight [E, H, I/2]``, ``w2_weight_scale [E, H, I/32]``, and with bias
``w13_bias [E, 2I]``, ``w2_bias [E, H]`` in the activation dtype.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch

from . import mx
from .spec import MoESpec


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    description: str


def canonical_params(spec: MoESpec) -> tuple[ParamSpec, ...]:
    e, h, i = spec.num_local_experts, spec.hidden_size, spec.intermediate_size
    params = [
        ParamSpec("w13_weight", (e, 2 * i, h // 2), torch.uint8, "gate/up E2M1 codes, two per byte"),
        ParamSpec("w13_weight_scale", (e, 2 * i, h // mx.BLOCK_SIZE), torch.uint8, "gate/up E8M0 block scales"),
        ParamSpec("w2_weight", (e, h, i // 2), torch.uint8, "down E2M1 codes, two per byte"),
        ParamSpec("w2_weight_scale", (e, h, i // mx.BLOCK_SIZE), torch.uint8, "down E8M0 block scales"),
    ]
    if spec.has_bias:
        params += [
            ParamSpec("w13_bias", (e, 2 * i), spec.act_dtype, "gate/up bias, rows as w13_weight"),
            ParamSpec("w2_bias", (e, h), spec.act_dtype, "down bias"),
        ]
    return tuple(params)


@dataclasses.dataclass(frozen=True)
class MoEWeights:
    """The loaded, checked canonical tensors of one layer (on one rank)."""

    w13_weight: torch.Tensor
    w13_weight_scale: torch.Tensor
    w2_weight: torch.Tensor
    w2_weight_scale: torch.Tensor
    w13_bias: torch.Tensor | None = None
    w2_bias: torch.Tensor | None = None

    @classmethod
    def from_tensors(cls, spec: MoESpec, tensors: Mapping[str, torch.Tensor]) -> "MoEWeights":
        """Check ``tensors`` against ``canonical_params(spec)``; any mismatch is an error naming the tensor."""
        expected = {p.name: p for p in canonical_params(spec)}
        unexpected = sorted(set(tensors) - expected.keys())
        if unexpected:
            raise ValueError(f"unexpected MoE tensors {unexpected}: expected only {sorted(expected)}"
                             + ("" if spec.has_bias else " (the layer has no bias)"))
        for p in expected.values():
            if p.name not in tensors:
                raise ValueError(f"{p.name}: missing; expected {p.dtype} {p.shape} ({p.description})")
            t = tensors[p.name]
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"{p.name}: expected a torch.Tensor, got {type(t).__name__}")
            if tuple(t.shape) != p.shape or t.dtype != p.dtype:
                raise ValueError(f"{p.name}: expected {p.dtype} {p.shape}, got {t.dtype} {tuple(t.shape)}")
        mx.validate(tensors["w13_weight"], tensors["w13_weight_scale"], name="w13", reduction_size=spec.hidden_size)
        mx.validate(tensors["w2_weight"], tensors["w2_weight_scale"], name="w2", reduction_size=spec.intermediate_size)
        return cls(**{name: tensors[name] for name in expected})

    def expert(self, e: int, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """Dequantized ``(w13 [2I, H], w2 [H, I])`` of local expert ``e``."""
        return (mx.dequantize(self.w13_weight[e], self.w13_weight_scale[e], dtype),
                mx.dequantize(self.w2_weight[e], self.w2_weight_scale[e], dtype))
