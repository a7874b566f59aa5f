"""``reference``: plain PyTorch on any device; the correctness oracle.

Per local expert: gather the tokens routed to it, dequantize that expert's weights to
float32 (never the whole layer at once), both GEMMs with bias and the gated activation in
float32, then add the weighted result into a float32 output, rounded once at the end.
"""

from __future__ import annotations

import torch

from ..activations import gated_activation
from ..platform import Platform
from ..spec import MoESpec
from ..weights import MoEWeights
from .base import Backend


class ReferenceBackend(Backend):
    name = "reference"
    summary = "plain PyTorch, float32 per expert; slow, runs anywhere"

    @classmethod
    def supports(cls, spec: MoESpec, platform: Platform) -> str | None:
        return None

    def prepare(self, weights: MoEWeights) -> None:
        self.weights = weights

    def forward(self, x: torch.Tensor, topk_weights: torch.Tensor, topk_ids: torch.Tensor) -> torch.Tensor:
        spec, w = self.spec, self.weights
        out = torch.zeros(x.shape[0], spec.hidden_size, dtype=torch.float32, device=x.device)
        for e in range(spec.num_local_experts):
            tokens, slots = (topk_ids == e).nonzero(as_tuple=True)
            if tokens.numel() == 0:
                continue
            w13, w2 = w.expert(e)
            h = x[tokens].float() @ w13.T
            if w.w13_bias is not None:
                h = h + w.w13_bias[e].float()
            y = gated_activation(h, spec.activation, spec.gate_up_order) @ w2.T
            if w.w2_bias is not None:
                y = y + w.w2_bias[e].float()
            out.index_add_(0, tokens, y * topk_weights[tokens, slots].float().unsqueeze(1))
        return out.to(x.dtype)
