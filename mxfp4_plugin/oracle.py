"""The oracle: the one function that picks a backend for a layer, and says why.

Everything else asks ``choose``. The preference order per platform family is the table
``ORDER`` below; a backend registered by a third-party plugin and absent from the table is
tried after the table's entries, in name order. An explicit request that cannot be
honoured is an error naming the reason and the backends that would run.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

from .backends.base import Backend
from .platform import Platform
from .spec import MoESpec

ENV_VAR = "MXFP4_PLUGIN_BACKEND"
AUTO = "auto"

# Preference per platform family, best first. Keys are Platform.family values; "cuda" is
# any CUDA family without a row of its own. Only registered backends may appear here.
# Measured on an H200 (BENCHMARKS.md round 14, `mxfp4-plugin bench`, CUDA graphs, one run), ours
# against triton_kernels at 1 / 4 / 16..256 / 1024 / 4096 / 8192 tokens: gpt-oss-120b 2.58x / 1.61x /
# 1.04-1.11x / 1.29x / 1.15x / 1.07x, gpt-oss-20b 2.56x / 1.55x / 1.13-1.28x / 1.15x / 1.00x / 0.98x,
# DeepSeek-like 1.88x / 1.25x / 0.94-0.99x / 1.12x / 1.04x / 1.05x; on an H100 (round 28's kernels and
# table): gpt-oss-120b 2.42x / 1.56x / 1.04-1.16x / 1.21x / 1.21x / 1.12x, gpt-oss-20b 2.49x / 1.51x /
# 1.15-1.31x / 1.16x / 1.06x / 0.99x, DeepSeek-like 1.88x / 1.31x / 0.98-1.11x / 1.12x / 1.11x / 1.11x.
# A layer gets one backend for all batch sizes: ours is first on Hopper (ahead or level at every point of
# the H100 bench; between them, at some counts of 640-896 and 1280-3072 tokens, up to 9% behind: rounds
# 28-29's A/B);
# MXFP4_PLUGIN_BACKEND=triton_kernels picks the peer.
# FlashInfer CUTLASS and Marlin are unmeasured here (not runnable on the GPU machine) and
# follow vLLM 0.33's own MXFP4 preference (ENGINE_NOTES 3.10); trtllm-gen first on Blackwell.
# ``auto`` also skips any backend whose ``verified_on`` lacks the family (never compared
# against reference on such hardware).
ORDER: dict[str, tuple[str, ...]] = {
    "sm90": ("triton", "triton_kernels", "flashinfer_cutlass", "marlin", "reference"),
    "sm100": ("flashinfer_trtllm", "flashinfer_cutlass", "triton_kernels", "triton", "marlin", "reference"),
    "cpu": ("reference",),
    "cuda": ("triton", "marlin", "reference"),
}


class BackendRequestError(ValueError):
    """The user asked for a backend that does not exist or cannot run this layer here."""


@dataclasses.dataclass(frozen=True)
class Candidate:
    backend: str
    verdict: str  # "chosen", "rejected", "unverified" (runs, but auto skips it here) or "supported"
    reason: str


@dataclasses.dataclass(frozen=True)
class Decision:
    backend: type[Backend]
    reason: str
    request: str
    request_source: str
    platform: Platform
    candidates: tuple[Candidate, ...]
    config_note: str | None = None  # how the chosen backend's launch configs differ from its own (Backend.config_note)

    @property
    def name(self) -> str:
        return self.backend.name

    @property
    def rejected(self) -> tuple[Candidate, ...]:
        return tuple(c for c in self.candidates if c.verdict != "chosen")

    def summary(self) -> str:
        """One line for the engine's log."""
        note = f"; {self.config_note}" if self.config_note else ""
        return f"mxfp4-plugin: backend '{self.name}' on {self.platform.family}: {self.reason}{note}"

    def to_dict(self) -> dict:
        return {
            "backend": self.name,
            "reason": self.reason,
            "request": self.request,
            "request_source": self.request_source,
            "platform": {"family": self.platform.family, "device": self.platform.device,
                         "device_name": self.platform.device_name, "packages": sorted(self.platform.packages),
                         "versions": dict(self.platform.versions)},
            "candidates": [dataclasses.asdict(c) for c in self.candidates],
            "config_note": self.config_note,
        }


def resolve_request(flag_value: str | None = None, flag_name: str = "the engine's MoE backend flag",
                    env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``(request, where it came from)``. ``MXFP4_PLUGIN_BACKEND`` names any plugin backend; a
    flag other than auto that disagrees with it is an error, never a silent pick."""
    env = os.environ if env is None else env
    from_env = env.get(ENV_VAR, "").strip()
    flag = (flag_value or AUTO).strip()
    if from_env and from_env != AUTO:
        if flag != AUTO and flag != from_env:
            raise BackendRequestError(f"{ENV_VAR}={from_env!r} conflicts with {flag_name} {flag!r}: "
                                      f"set one of them, or make them agree")
        return from_env, ENV_VAR
    if flag != AUTO:
        return flag, flag_name
    return AUTO, "default"


def order_for(platform: Platform, registered: Mapping[str, type[Backend]]) -> tuple[str, ...]:
    table = ORDER.get(platform.family) or ORDER["cuda" if platform.device == "cuda" else "cpu"]
    extra = sorted(name for name in registered if name not in table)
    return tuple(table) + tuple(extra)


def choose(spec: MoESpec, platform: Platform, request: str = AUTO, *, request_source: str = "argument",
           backends: Mapping[str, type[Backend]] | None = None) -> Decision:
    if backends is None:
        from .plugins import registered_backends

        backends = registered_backends()
    order = order_for(platform, backends)
    verdicts = {name: (backends[name].supports(spec, platform) if name in backends
                       else "not registered: no installed plugin provides it") for name in order}
    runnable = [name for name in order if verdicts[name] is None]
    unverified = {name for name in runnable if not backends[name].verified(platform)}
    unverified_note = (f"can run here but has not been checked against 'reference' on {platform.family} "
                       f"hardware, so auto skips it; ask for it by name to use it")

    if request == AUTO:
        trusted = [name for name in runnable if name not in unverified]
        if not trusted:
            raise BackendRequestError("no backend can run this layer here: " + "; ".join(
                f"{n}: {unverified_note if n in unverified else verdicts[n]}" for n in order))
        chosen = trusted[0]
        above = order[: order.index(chosen)]
        reason = (f"highest-ranked backend that supports this layer in the {platform.family} order "
                  f"({' > '.join(order)})")
        if above:
            reason += ("; higher-ranked ones cannot run here"
                       + (" or are unverified on this hardware" if unverified & set(above) else ""))
    else:
        if request not in backends:
            raise BackendRequestError(f"unknown backend {request!r} (from {request_source}): registered backends "
                                      f"are {sorted(backends)}")
        if verdicts[request] is not None:
            raise BackendRequestError(f"backend {request!r} (from {request_source}) cannot run this layer here: "
                                      f"{verdicts[request]}. Backends that would run: {runnable or 'none'}")
        chosen = request
        reason = f"requested by {request_source}"
        if request in unverified:
            reason += f" (not yet checked against 'reference' on {platform.family} hardware)"

    candidates = tuple(
        Candidate(name, "chosen", reason) if name == chosen
        else Candidate(name, "rejected", verdicts[name]) if verdicts[name] is not None
        else Candidate(name, "unverified", unverified_note) if name in unverified
        else Candidate(name, "supported", f"can run here, but {chosen!r} was chosen")
        for name in order)
    return Decision(backends[chosen], reason, request, request_source, platform, candidates,
                    backends[chosen].config_note(spec))
