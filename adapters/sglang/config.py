"""``PluginMxfp4Config``: SGLang's QuantizationConfig for ``--quantization mxfp4-plugin``.

It subclasses SGLang's own ``Mxfp4Config`` so that ``get_name()`` stays ``"mxfp4"``: SGLang's
gpt-oss model and ``FusedMoE.weight_loader`` take their MXFP4 loading paths only for that
name (ENGINE_NOTES 4.3, trap 4). The registry key, and so ``ModelConfig.quantization``, is
``mxfp4-plugin``. Imported only from ``register()``: this module imports SGLang.
"""

from __future__ import annotations

import logging
from typing import Any

from sglang.srt.layers.moe.fused_moe_triton.layer import FusedMoE
from sglang.srt.layers.quantization.mxfp4 import Mxfp4Config

from ...decisions import DecisionCache
from .flags import CHECKPOINT_METHODS, QUANTIZATION_NAME

logger = logging.getLogger(__name__)


class PluginMxfp4Config(Mxfp4Config):
    """MXFP4 experts through mxfp4-plugin's oracle; every other layer as SGLang's Mxfp4Config has it."""

    def __init__(self, ignored_layers: list[str] | None = None, is_checkpoint_mxfp4_serialized: bool = False) -> None:
        super().__init__(ignored_layers=ignored_layers, is_checkpoint_mxfp4_serialized=is_checkpoint_mxfp4_serialized)
        self.decisions = DecisionCache(logger.info)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "PluginMxfp4Config":
        method = str(config.get("quant_method", "")).lower()
        if method not in CHECKPOINT_METHODS:
            raise ValueError(f"--quantization {QUANTIZATION_NAME}: the checkpoint's quantization_config has "
                             f"quant_method {config.get('quant_method')!r}; expected one of {list(CHECKPOINT_METHODS)}. "
                             f"Quantize a bf16 gpt-oss checkpoint with `mxfp4-plugin quantize`.")
        return cls(is_checkpoint_mxfp4_serialized=True)

    @classmethod
    def override_quantization_method(cls, hf_quant_cfg: dict[str, Any] | None, user_quant: str | None) -> str | None:
        # SGLang calls this with two arguments (trap 2), for every registered method and for the
        # checkpoint's own method too: claim MXFP4 checkpoints only when the user asked for the plugin.
        if user_quant == QUANTIZATION_NAME and isinstance(hf_quant_cfg, dict) \
                and str(hf_quant_cfg.get("quant_method", "")).lower() in CHECKPOINT_METHODS:
            return QUANTIZATION_NAME
        return None

    def get_quant_method(self, layer, prefix: str):
        if isinstance(layer, FusedMoE):
            if not self.is_checkpoint_mxfp4_serialized:
                raise ValueError(f"--quantization {QUANTIZATION_NAME}: {prefix} has no MXFP4 weights in the "
                                 f"checkpoint (no quantization_config with quant_method in {list(CHECKPOINT_METHODS)}); "
                                 f"the plugin serves MXFP4 checkpoints such as gpt-oss. Quantize a bf16 one with "
                                 f"`mxfp4-plugin quantize`.")
            from .moe_method import PluginMxfp4MoEMethod

            return PluginMxfp4MoEMethod(self, prefix)
        return super().get_quant_method(layer, prefix)
