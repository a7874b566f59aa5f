"""``PluginMxfp4Config``: vLLM's QuantizationConfig for ``--quantization mxfp4-plugin``.

Imported only from ``register()``: this module imports vLLM.
"""

from __future__ import annotations

from typing import Any

import torch
from vllm.logger import init_logger
from vllm.model_executor.layers.fused_moe import RoutedExperts
from vllm.model_executor.layers.linear import LinearBase, UnquantizedLinearMethod
from vllm.model_executor.layers.quantization.base_config import QuantizationConfig, QuantizeMethodBase

from ...decisions import DecisionCache
from ...oracle import Decision
from ...spec import MoESpec
from .flags import CHECKPOINT_METHODS, QUANTIZATION_NAME, plugin_backend_for

# Under "vllm." so that vLLM's own log handlers and levels apply.
logger = init_logger("vllm.mxfp4_plugin")


class PluginMxfp4Config(QuantizationConfig):
    """MXFP4 experts through mxfp4-plugin's oracle; every other layer as vLLM has it."""

    def __init__(self, checkpoint_method: str | None = None) -> None:
        super().__init__()
        self.checkpoint_method = checkpoint_method
        self.hf_config: Any = None
        self.decisions = DecisionCache(logger.info)

    @classmethod
    def get_name(cls) -> str:
        return QUANTIZATION_NAME

    @classmethod
    def get_supported_act_dtypes(cls) -> list[torch.dtype]:
        return [torch.bfloat16]  # gpt-oss biases are bf16; a float16 model would need a silent cast

    @classmethod
    def get_min_capability(cls) -> int:
        return 80  # bf16 activations; each backend checks its own needs on top

    @staticmethod
    def get_config_filenames() -> list[str]:
        return []

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "PluginMxfp4Config":
        method = config.get("quant_method")
        if method not in CHECKPOINT_METHODS:
            raise ValueError(f"--quantization {QUANTIZATION_NAME}: the checkpoint's quantization_config has "
                             f"quant_method {method!r}; expected one of {list(CHECKPOINT_METHODS)}")
        return cls(checkpoint_method=method)

    @classmethod
    def override_quantization_method(cls, hf_quant_cfg: dict[str, Any], user_quant: str | None,
                                     hf_config: Any = None) -> str | None:
        # Claim MXFP4 checkpoints only when the user asked for the plugin: otherwise vLLM's own
        # method stays in charge. Without this, vLLM rewrites the flag to gpt_oss_mxfp4.
        if user_quant == QUANTIZATION_NAME and isinstance(hf_quant_cfg, dict) \
                and hf_quant_cfg.get("quant_method") in CHECKPOINT_METHODS:
            return QUANTIZATION_NAME
        return None

    def maybe_update_config(self, model_name: str, hf_config: Any = None, revision: str | None = None) -> None:
        if self.checkpoint_method is None:
            # Built with no checkpoint quantization_config (vLLM calls cls() then): the weights are
            # not MXFP4, and loading them into MXFP4 parameters could only go wrong.
            raise ValueError(f"--quantization {QUANTIZATION_NAME}: {model_name} has no MXFP4 quantization_config "
                             f"(expected quant_method in {list(CHECKPOINT_METHODS)}); the plugin serves MXFP4 "
                             f"checkpoints such as gpt-oss. Quantize a bf16 one with `mxfp4-plugin quantize`.")
        self.hf_config = hf_config

    def decide(self, spec: MoESpec, moe_backend: str | None) -> Decision:
        """One decision per distinct layer spec, logged when first made: once per model whose
        MoE layers are alike."""
        return self.decisions.decide(spec, plugin_backend_for(moe_backend), "--moe-backend")

    def get_quant_method(self, layer: torch.nn.Module, prefix: str) -> QuantizeMethodBase | None:
        if isinstance(layer, LinearBase):
            return UnquantizedLinearMethod()
        if isinstance(layer, RoutedExperts):
            from .moe_method import PluginMxfp4MoEMethod

            return PluginMxfp4MoEMethod(layer.moe_config, self)
        return None
