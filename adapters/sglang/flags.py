"""SGLang's names for things, mapped onto the plugin's: one table each. Imports no SGLang."""

from __future__ import annotations

from ...oracle import AUTO, BackendRequestError
from ...platform import Platform

QUANTIZATION_NAME = "mxfp4-plugin"
FLAG = "--moe-runner-backend"

# Checkpoint quant_method values this config serves (SGLang passes the checkpoint's own string).
CHECKPOINT_METHODS = ("mxfp4",)

# Canonical parameter name -> the name SGLang's gpt-oss loader fills (ENGINE_NOTES 2.2, trap 5).
PARAM_NAMES: dict[str, str] = {
    "w13_weight": "w13_weight",
    "w13_weight_scale": "w13_weight_scale",
    "w2_weight": "w2_weight",
    "w2_weight_scale": "w2_weight_scale",
    "w13_bias": "w13_weight_bias",
    "w2_bias": "w2_weight_bias",
}

# Plugin backends SGLang has no name for: registered as extra --moe-runner-backend values.
PLUGIN_RUNNER_BACKENDS: dict[str, str] = {
    "mxfp4_plugin_triton": "triton",  # the plugin's own Triton MXFP4 kernel (kernels/)
    "mxfp4_plugin_reference": "reference",  # plain PyTorch, any device: the correctness oracle
}

# --moe-runner-backend value -> plugin backend, where the value names one kernel.
MOE_RUNNER_BACKEND_TO_PLUGIN: dict[str, str] = {
    "auto": AUTO,  # the oracle chooses
    "triton_kernel": "triton_kernels",  # OpenAI's triton_kernels (matmul_ogs), as SGLang's own value means
    "flashinfer_cutlass": "flashinfer_cutlass",
    "flashinfer_trtllm": "flashinfer_trtllm",
    "marlin": "marlin",
    **PLUGIN_RUNNER_BACKENDS,
}

# --moe-runner-backend flashinfer_mxfp4 is SGLang's umbrella for its FlashInfer MXFP4 kernels; which
# one runs depends on the GPU generation (CUDA capability major) and --flashinfer-mxfp4-moe-precision,
# as in SGLang's own Mxfp4MoEMethod: SM90 -> CUTLASS W4A16 (bf16 activations); SM100 -> trtllm-gen,
# with MXFP8 activations by default and bf16 ones with precision bf16. Precision fp8 on SM90 (SGLang's
# Humming W4A8) has no plugin counterpart.
FLASHINFER_MXFP4: dict[tuple[int, str], str] = {
    (9, "default"): "flashinfer_cutlass",
    (9, "bf16"): "flashinfer_cutlass",
    (10, "default"): "flashinfer_trtllm_mxfp8",
    (10, "bf16"): "flashinfer_trtllm",
}


def known_values() -> list[str]:
    return sorted([*MOE_RUNNER_BACKEND_TO_PLUGIN, "flashinfer_mxfp4"])


def plugin_backend_for(value: str | None, platform: Platform, precision: str | None = "default") -> str:
    """The plugin backend (or ``auto``) that ``--moe-runner-backend value`` asks for on ``platform``."""
    value = (value or AUTO).strip().lower()
    if value in MOE_RUNNER_BACKEND_TO_PLUGIN:
        return MOE_RUNNER_BACKEND_TO_PLUGIN[value]
    if value == "flashinfer_mxfp4":
        precision = precision or "default"
        major = platform.capability[0] if platform.capability else None
        key = (major, precision)
        if key not in FLASHINFER_MXFP4:
            honoured = ", ".join(f"sm{m}0 with precision {p}" for m, p in FLASHINFER_MXFP4)
            raise BackendRequestError(
                f"{FLAG} flashinfer_mxfp4 with --flashinfer-mxfp4-moe-precision {precision} has no mxfp4-plugin "
                f"counterpart on {platform.family}: it maps to a plugin backend on {honoured}. Use {FLAG} auto, "
                f"or one of {sorted(MOE_RUNNER_BACKEND_TO_PLUGIN)}")
        return FLASHINFER_MXFP4[key]
    raise BackendRequestError(
        f"{FLAG} {value!r} has no mxfp4-plugin counterpart; with --quantization {QUANTIZATION_NAME} use one of "
        f"{known_values()}, or set MXFP4_PLUGIN_BACKEND to any plugin backend (`mxfp4-plugin explain` lists them)")
