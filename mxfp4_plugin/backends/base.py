"""What a backend is: a kernel that can run some MoE layers on some platforms.

A backend class says, before any weight exists, whether it can run a layer here
(``supports``); an instance then owns one layer's weights in its kernel's layout
(``prepare``, once) and computes the layer (``forward``, every step).
"""

from __future__ import annotations

import abc
from typing import ClassVar

import torch

from ..platform import Platform
from ..spec import MoESpec
from ..weights import MoEWeights


class Backend(abc.ABC):
    #: The name users pass (``MXFP4_PLUGIN_BACKEND``, the CLI) and the oracle's table uses.
    name: ClassVar[str]
    #: One line: what runs underneath.
    summary: ClassVar[str]
    #: Platform families (``Platform.family``: "cpu", "sm90", ...) on which this backend has
    #: been compared against ``reference`` on real hardware. ``None``: everywhere it supports
    #: (pure PyTorch). The oracle's ``auto`` never picks a backend on a family outside this
    #: set; asking for it by name still works, and the decision says it is unverified there.
    verified_on: ClassVar[frozenset[str] | None] = None

    @classmethod
    def verified(cls, platform: Platform) -> bool:
        return cls.verified_on is None or platform.family in cls.verified_on

    @classmethod
    @abc.abstractmethod
    def supports(cls, spec: MoESpec, platform: Platform) -> str | None:
        """``None`` if this backend can run ``spec`` on ``platform``, else the reason, in words."""

    @classmethod
    def config_note(cls, spec: MoESpec) -> str | None:
        """What the environment changes in how this backend runs ``spec`` (the decision's log line shows it), or
        None. Tuned launch configs (``MXFP4_PLUGIN_MOE_CONFIGS``) serve our ``triton`` kernels only: any other
        backend says that it does not read them, so a set variable is never silently ignored."""
        from ..kernels.moe_details.tuned_rows import ENV_VAR, env_path

        path = env_path()
        return f"{ENV_VAR}={path} is not used: '{cls.name}' runs launch configs of its own" if path else None

    def __init__(self, spec: MoESpec, platform: Platform) -> None:
        self.spec = spec
        self.platform = platform

    @abc.abstractmethod
    def prepare(self, weights: MoEWeights) -> None:
        """Convert the checked canonical weights once into this kernel's layout."""

    @abc.abstractmethod
    def forward(self, x: torch.Tensor, topk_weights: torch.Tensor, topk_ids: torch.Tensor) -> torch.Tensor:
        """``x [M, H]`` in the activation dtype, ``topk_weights [M, k]`` float, ``topk_ids [M, k]``
        holding **local** expert indices (-1: the expert is on another rank and contributes
        nothing) -> the weighted sum over the top-k experts, ``[M, H]`` in ``x``'s dtype."""
