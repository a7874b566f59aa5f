"""vLLM's names for things, mapped onto the plugin's: one table each. Imports no vLLM."""

from __future__ import annotations

from ...oracle import AUTO, BackendRequestError

QUANTIZATION_NAME = "mxfp4-plugin"

# Checkpoint quant_method values this config serves. vLLM rewrites gpt-oss's "mxfp4" into
# "gpt_oss_mxfp4" before from_config sees it (ENGINE_NOTES 3.4).
CHECKPOINT_METHODS = ("mxfp4", "gpt_oss_mxfp4")

# --moe-backend (a closed list in vLLM: a plugin cannot add values) -> plugin backend.
# Any plugin backend, including ones vLLM has no name for, is reachable through MXFP4_PLUGIN_BACKEND.
MOE_BACKEND_TO_PLUGIN: dict[str, str] = {
    "auto": AUTO,
    "triton": "triton_kernels",  # vLLM's MXFP4 "triton" backend is OpenAI's triton_kernels
    "flashinfer_cutlass": "flashinfer_cutlass",
    "flashinfer_trtllm": "flashinfer_trtllm",
    "marlin": "marlin",
    "emulation": "reference",  # vLLM's EMULATION dequantizes and computes in high precision, as reference does
}


def plugin_backend_for(moe_backend: str | None) -> str:
    value = (moe_backend or "auto").replace("-", "_").lower()
    if value not in MOE_BACKEND_TO_PLUGIN:
        raise BackendRequestError(
            f"--moe-backend {value!r} has no mxfp4-plugin counterpart; with --quantization {QUANTIZATION_NAME} use one "
            f"of {sorted(MOE_BACKEND_TO_PLUGIN)}, or set MXFP4_PLUGIN_BACKEND to any plugin backend "
            f"(`mxfp4-plugin explain` lists them)")
    return MOE_BACKEND_TO_PLUGIN[value]

# vLLM MoEActivation value -> (plugin activation, w13 row order vLLM's loaders produce)
ACTIVATIONS: dict[str, tuple[str, str]] = {
    "swigluoai": ("swiglu_oai", "interleaved"),  # gpt-oss: rows g0, u0, g1, u1, ...
    "swigluoai_uninterleave": ("swiglu_oai", "concatenated"),
    "silu": ("silu", "concatenated"),  # [w1; w3] from MergedColumnParallelLinear-style loaders
}

# canonical parameter -> the dimension vLLM's gpt-oss loader may fill only partly on a rank:
# the TP tail of the intermediate axis (ENGINE_NOTES 2.4); None: filled whole
PARTIAL_DIMS: dict[str, int | None] = {
    "w13_weight": 1, "w13_weight_scale": 1, "w13_bias": 1,
    "w2_weight": 2, "w2_weight_scale": 2, "w2_bias": None,
}
