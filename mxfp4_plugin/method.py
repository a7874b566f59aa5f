"""``Mxfp4MoEMethod``: the protocol both engine adapters drive, in three steps.

1. ``params()`` / ``allocate()``: the canonical parameter set (``weights.py``) for the
   engine's own loader to fill;
2. ``process_weights_after_loading(tensors)``: checks the loaded tensors and hands them to
   the backend the oracle chose, which converts them once into its kernel's layout;
3. ``forward(hidden_states, topk_weights, topk_ids)``: the weighted sum over the top-k
   experts, ``[tokens, hidden]``. ``topk_ids`` are global expert ids; experts that the
   spec's ``expert_map`` puts on other ranks contribute nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from .oracle import AUTO, Decision, choose
from .platform import Platform, detect
from .spec import MoESpec
from .weights import MoEWeights, ParamSpec, canonical_params


class Mxfp4MoEMethod:
    def __init__(self, spec: MoESpec, *, request: str = AUTO, request_source: str = "argument",
                 platform: Platform | None = None, decision: Decision | None = None) -> None:
        """``decision`` lets an adapter choose once per model and share it across layers."""
        self.spec = spec
        self.platform = platform or (decision.platform if decision else detect())
        self.decision = decision or choose(spec, self.platform, request, request_source=request_source)
        self.backend = self.decision.backend(spec, self.platform)
        self._expert_map: torch.Tensor | None = None
        self._ready = False

    def params(self) -> tuple[ParamSpec, ...]:
        return canonical_params(self.spec)

    def allocate(self, device: torch.device | str | None = None) -> dict[str, torch.Tensor]:
        """Zero-filled canonical parameters: a loader that fills only a leading slice (TP
        padding) leaves zeros, which contribute exactly nothing through either GEMM."""
        return {p.name: torch.zeros(p.shape, dtype=p.dtype, device=device) for p in self.params()}

    def process_weights_after_loading(self, tensors: Mapping[str, torch.Tensor]) -> None:
        weights = MoEWeights.from_tensors(self.spec, tensors)
        if self.spec.expert_map is not None:
            self._expert_map = torch.tensor(self.spec.expert_map, dtype=torch.int32, device=weights.w13_weight.device)
        self.backend.prepare(weights)
        self._ready = True

    def forward(self, hidden_states: torch.Tensor, topk_weights: torch.Tensor, topk_ids: torch.Tensor,
                *, ids_are_local: bool = False) -> torch.Tensor:
        """``ids_are_local``: the engine already mapped ids to local indices (-1 = elsewhere)."""
        if not self._ready:
            raise RuntimeError("Mxfp4MoEMethod.forward: call process_weights_after_loading first")
        self._check_inputs(hidden_states, topk_weights, topk_ids)
        local_ids = topk_ids if ids_are_local or self._expert_map is None else self._expert_map[topk_ids.long()]
        out = self.backend.forward(hidden_states, topk_weights, local_ids)
        if self.spec.routed_scaling_factor is not None:
            out = out * self.spec.routed_scaling_factor
        return out

    __call__ = forward

    def _check_inputs(self, x: torch.Tensor, topk_weights: torch.Tensor, topk_ids: torch.Tensor) -> None:
        spec = self.spec
        if x.dim() != 2 or x.shape[1] != spec.hidden_size:
            raise ValueError(f"hidden_states: expected shape [tokens, {spec.hidden_size}], got {tuple(x.shape)}")
        if x.dtype != spec.act_dtype:
            raise TypeError(f"hidden_states: expected dtype {spec.act_dtype} (the layer's activation dtype), got {x.dtype}")
        expected = (x.shape[0], spec.top_k)
        for name, t in (("topk_weights", topk_weights), ("topk_ids", topk_ids)):
            if tuple(t.shape) != expected:
                raise ValueError(f"{name}: expected shape {list(expected)} (tokens, top_k), got {tuple(t.shape)}")
            if t.device != x.device:
                raise ValueError(f"{name}: expected device {x.device} (as hidden_states), got {t.device}")
        if not topk_weights.is_floating_point():
            raise TypeError(f"topk_weights: expected a floating-point dtype, got {topk_weights.dtype}")
        if topk_ids.dtype not in (torch.int32, torch.int64, torch.int16):
            raise TypeError(f"topk_ids: expected an integer dtype (int32 or int64), got {topk_ids.dtype}")


def empty_engine_parameters(params: Iterable[torch.nn.Parameter]) -> None:
    """After ``process_weights_after_loading``: the backend holds what it needs (the loaded tensors
    themselves, or its own converted copies such as our kernel's BF16X2 words), so an engine's
    parameters are emptied: a converting backend must not leave the checkpoint's copy in memory too
    (for gpt-oss-120b that copy is ~61 GB). Engine features that re-read expert parameters after
    loading (weight updates, expert rebalancing) are therefore not supported with the plugin."""
    for param in params:
        param.data = param.data.new_empty(0)
