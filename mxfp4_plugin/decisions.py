"""One oracle decision per distinct layer, logged once: what an engine adapter keeps per model.

A model whose MoE layers are alike gets one decision and one log line, not one per layer.
"""

from __future__ import annotations

from collections.abc import Callable

from .oracle import Decision, choose, resolve_request
from .platform import Platform, detect
from .spec import MoESpec


class DecisionCache:
    def __init__(self, log: Callable[[str], None]) -> None:
        """``log`` receives one line per new decision: the backend, the reason, what was rejected."""
        self._log = log
        self._decisions: dict[tuple[MoESpec, str, Platform], Decision] = {}

    def decide(self, spec: MoESpec, flag_backend: str | None, flag_name: str,
               platform: Platform | None = None) -> Decision:
        """``flag_backend``: the plugin backend the engine's flag asks for (``auto`` or a name);
        ``MXFP4_PLUGIN_BACKEND`` is folded in by ``resolve_request``."""
        platform = platform or detect()
        request, source = resolve_request(flag_backend, flag_name)
        key = (spec, request, platform)
        if key not in self._decisions:
            decision = choose(spec, platform, request, request_source=source)
            self._decisions[key] = decision
            rejected = "; ".join(f"{c.backend}: {c.reason}" for c in decision.rejected) or "none"
            self._log(f"{decision.summary()} (rejected: {rejected})")
        return self._decisions[key]

    def __len__(self) -> int:
        return len(self._decisions)
