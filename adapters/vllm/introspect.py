"""Ask a running vLLM engine what the plugin chose: ``llm.apply_model(layer_decisions)``
runs this in each worker (pickled by reference, so it must live in an importable module;
vLLM needs ``VLLM_ALLOW_INSECURE_SERIALIZATION=1`` to send a function to its workers)."""

from __future__ import annotations

import torch


def layer_decisions(model: torch.nn.Module) -> list[str]:
    """The distinct decision summaries of every MoE layer of ``model`` handled by the plugin."""
    return sorted({m.quant_method.core.decision.summary() for m in model.modules()
                   if getattr(getattr(m, "quant_method", None), "core", None) is not None})
