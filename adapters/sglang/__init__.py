"""SGLang adapter: ``--quantization mxfp4-plugin``.

Entry point ``sglang.srt.plugins`` -> ``register()``, which SGLang's ``load_plugins()`` calls in
every process (launcher before argument parsing, each scheduler, detokenizer), and which may run
more than once. SGLang swallows exceptions raised here (then rejects ``--quantization
mxfp4-plugin`` as an invalid choice), so this does nothing but registration. SGLang is imported
only inside ``register()``, so importing this package never imports an engine.
"""

from __future__ import annotations

from .flags import PLUGIN_RUNNER_BACKENDS, QUANTIZATION_NAME

_registered = False


def register() -> None:
    global _registered
    if _registered:
        return
    from sglang.srt.arg_groups.choices import MOE_RUNNER_BACKEND_CHOICES, QUANTIZATION_CHOICES
    from sglang.srt.layers.moe.utils import register_moe_runner_backend_name
    from sglang.srt.layers.quantization import CPU_QUANTIZATION_METHODS, QUANTIZATION_METHODS
    from sglang.srt.server_args import add_moe_runner_backend_choices, add_quantization_method_choices

    from .config import PluginMxfp4Config

    QUANTIZATION_METHODS[QUANTIZATION_NAME] = PluginMxfp4Config
    CPU_QUANTIZATION_METHODS[QUANTIZATION_NAME] = PluginMxfp4Config  # consulted on AMX CPUs
    if QUANTIZATION_NAME not in QUANTIZATION_CHOICES:
        add_quantization_method_choices([QUANTIZATION_NAME])
    for name in PLUGIN_RUNNER_BACKENDS:
        register_moe_runner_backend_name(name)  # idempotent for names SGLang does not build in
        if name not in MOE_RUNNER_BACKEND_CHOICES:
            add_moe_runner_backend_choices([name])
    _registered = True
