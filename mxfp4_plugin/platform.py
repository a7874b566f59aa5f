"""What machine this is: device kind, compute capability, which optional packages import.

Probes use ``importlib.util.find_spec`` so detection imports no heavy package; each probe
names the submodule that tells the real package from a namesake (ENGINE_NOTES trap 7: PyPI
``triton-kernels`` shadows OpenAI's ``triton_kernels`` but has no ``matmul_ogs``).
"""

from __future__ import annotations

import dataclasses
import importlib.util

import torch

# Optional package -> module paths, any one of which proves it is installed.
PACKAGE_PROBES: dict[str, tuple[str, ...]] = {
    "triton": ("triton.language",),
    "triton_kernels": ("triton_kernels.matmul_ogs", "triton_kernels.matmul", "vllm.third_party.triton_kernels.matmul_ogs"),
    "flashinfer": ("flashinfer.fused_moe",),
}


@dataclasses.dataclass(frozen=True)
class Platform:
    device: str  # "cpu" or "cuda"
    capability: tuple[int, int] | None = None
    packages: frozenset[str] = frozenset()
    device_name: str = ""

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device: expected 'cpu' or 'cuda', got {self.device!r}")
        if (self.device == "cuda") != (self.capability is not None):
            raise ValueError(f"capability: expected one for cuda and none for cpu, got {self.capability} on {self.device}")
        object.__setattr__(self, "packages", frozenset(self.packages))

    @property
    def family(self) -> str:
        """``cpu``, or ``smXY`` for CUDA compute capability X.Y (sm90 = Hopper, sm100 = Blackwell)."""
        if self.capability is None:
            return "cpu"
        major, minor = self.capability
        return f"sm{major}{minor}"

    def describe(self) -> str:
        where = f"{self.family} ({self.device_name})" if self.device_name else self.family
        return f"{where}; optional packages: {', '.join(sorted(self.packages)) or 'none'}"


def _installed(module_paths: tuple[str, ...]) -> bool:
    for path in module_paths:
        try:
            if importlib.util.find_spec(path) is not None:
                return True
        except (ImportError, ValueError):
            continue
    return False


def detect(device: str | torch.device | None = None) -> Platform:
    """The platform a layer on ``device`` runs on (default: CUDA if available, else CPU)."""
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    packages = frozenset(name for name, paths in PACKAGE_PROBES.items() if _installed(paths))
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        return Platform("cuda", tuple(torch.cuda.get_device_capability(index)), packages,
                        torch.cuda.get_device_name(index))
    if dev.type != "cpu":
        raise ValueError(f"device: mxfp4-plugin runs on cpu or cuda devices, got {dev}")
    return Platform("cpu", None, packages)
