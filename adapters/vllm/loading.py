"""The weight loader vLLM's gpt-oss loading code calls for our parameters.

vLLM's ``_load_weights_mxfp4`` hands whole-layer tensors with ``shard_id=None`` (ENGINE_NOTES
3.8); ``RoutedExperts.weight_loader`` accepts that only for its own ``gpt_oss_mxfp4`` config,
so we copy those ourselves: into the leading slice of the zero-filled parameter, checking
dtype and shape first. Per-expert (streamed) calls go to vLLM's loader unchanged. Every
parameter a loader call touches is marked, so a tensor missing from the checkpoint is an
error after loading rather than a layer of zeros.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

LOADED = "mxfp4_plugin_loaded"
PARTIAL_DIM = "mxfp4_plugin_partial_dim"


def copy_leading(param: torch.Tensor, loaded: torch.Tensor, name: str, partial_dim: int | None) -> None:
    expected = tuple(param.shape)
    got = tuple(loaded.shape)
    fits = len(got) == len(expected) and all(
        g == e or (d == partial_dim and g <= e) for d, (g, e) in enumerate(zip(got, expected)))
    if loaded.dtype != param.dtype or not fits:
        rule = f", dimension {partial_dim} at most" if partial_dim is not None else ""
        raise ValueError(f"{name}: checkpoint tensor {loaded.dtype} {list(got)} does not fit this rank's parameter: "
                         f"expected {param.dtype} {list(expected)}{rule}")
    param.data[tuple(slice(0, g) for g in got)].copy_(loaded)


def wrap_weight_loader(original: Callable) -> Callable:
    def weight_loader(param: torch.nn.Parameter, loaded_weight: torch.Tensor, weight_name: str | None = None,
                      shard_id: str | None = None, expert_id: int | None = None, return_success: bool = False):
        if shard_id is None and expert_id is None:
            copy_leading(param, loaded_weight, weight_name or "expert tensor", getattr(param, PARTIAL_DIM, None))
            result = True
        else:
            result = original(param, loaded_weight, weight_name=weight_name, shard_id=shard_id, expert_id=expert_id,
                              return_success=True)
        if result:
            setattr(param, LOADED, True)
        return result if return_success else None

    weight_loader.supports_moe_loading = True  # checked by some vLLM model loaders
    return weight_loader
