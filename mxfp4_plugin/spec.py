"""``MoESpec``: everything a backend needs to know about one MoE layer on one rank.

Engine-neutral: adapters build it from their engine's layer config; backends and the
oracle read it. Model constants (gpt-oss's alpha and limit) live in ``models.py``, not here.
"""

from __future__ import annotations

import dataclasses
import enum

import torch

from .mx import BLOCK_SIZE


class Activation(str, enum.Enum):
    """The gated activation between the two GEMMs."""

    #: gpt-oss: gate.clamp(max=limit), up.clamp(-limit, limit), (up + 1) * gate * sigmoid(alpha * gate)
    SWIGLU_OAI = "swiglu_oai"
    #: silu(gate) * up
    SILU = "silu"


class GateUpOrder(str, enum.Enum):
    """How the rows of the fused gate/up weight (w13) are ordered."""

    #: g0, u0, g1, u1, ... (the gpt-oss checkpoint)
    INTERLEAVED = "interleaved"
    #: all gate rows, then all up rows ([w1; w3], most other MoE checkpoints)
    CONCATENATED = "concatenated"


@dataclasses.dataclass(frozen=True)
class ActivationSpec:
    kind: Activation
    #: SwiGLU-OAI only: sigmoid slope and clamp limit (gpt-oss: 1.702 and 7.0).
    alpha: float | None = None
    limit: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", Activation(self.kind))
        if self.kind is Activation.SWIGLU_OAI:
            if self.alpha is None or self.limit is None:
                raise ValueError(f"activation: swiglu_oai needs alpha and limit, got alpha={self.alpha}, limit={self.limit}")
            if self.limit <= 0:
                raise ValueError(f"activation: limit must be positive, got {self.limit}")
        elif self.alpha is not None or self.limit is not None:
            raise ValueError(f"activation: {self.kind.value} takes no alpha or limit, got alpha={self.alpha}, limit={self.limit}")


@dataclasses.dataclass(frozen=True)
class ParallelLayout:
    """Where this rank sits. TP splits the intermediate dimension; EP splits whole experts."""

    tp_rank: int = 0
    tp_size: int = 1
    ep_rank: int = 0
    ep_size: int = 1

    def __post_init__(self) -> None:
        for rank, size, what in ((self.tp_rank, self.tp_size, "tp"), (self.ep_rank, self.ep_size, "ep")):
            if size < 1 or not 0 <= rank < size:
                raise ValueError(f"parallel: expected 0 <= {what}_rank < {what}_size, got {what}_rank={rank}, {what}_size={size}")


@dataclasses.dataclass(frozen=True)
class MoESpec:
    """One MoE layer on one rank.

    ``intermediate_size`` is the size per partition (after TP), as allocated on this rank.
    ``expert_map`` maps every global expert id to its local index, or -1 where the expert
    lives on another rank; ``None`` means all experts are local.
    """

    num_experts: int
    top_k: int
    hidden_size: int
    intermediate_size: int
    activation: ActivationSpec
    num_local_experts: int | None = None
    gate_up_order: GateUpOrder = GateUpOrder.INTERLEAVED
    has_bias: bool = False
    act_dtype: torch.dtype = torch.bfloat16
    routed_scaling_factor: float | None = None
    parallel: ParallelLayout = ParallelLayout()
    expert_map: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "gate_up_order", GateUpOrder(self.gate_up_order))
        if self.num_local_experts is None:
            object.__setattr__(self, "num_local_experts", self.num_experts)
        if self.expert_map is not None:
            object.__setattr__(self, "expert_map", tuple(int(i) for i in self.expert_map))
        self._validate()

    @property
    def w13_rows(self) -> int:
        return 2 * self.intermediate_size

    def _validate(self) -> None:
        for name in ("num_experts", "top_k", "hidden_size", "intermediate_size", "num_local_experts"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        for name in ("hidden_size", "intermediate_size"):
            value = getattr(self, name)
            if value % BLOCK_SIZE:
                raise ValueError(f"{name}: must be a multiple of the MXFP4 block size {BLOCK_SIZE}, got {value}")
        if self.top_k > self.num_experts:
            raise ValueError(f"top_k: cannot exceed num_experts ({self.num_experts}), got {self.top_k}")
        if self.num_local_experts > self.num_experts:
            raise ValueError(f"num_local_experts: cannot exceed num_experts ({self.num_experts}), got {self.num_local_experts}")
        if self.act_dtype not in (torch.bfloat16, torch.float16, torch.float32):
            raise ValueError(f"act_dtype: expected bfloat16, float16 or float32, got {self.act_dtype}")
        if self.routed_scaling_factor is not None and not self.routed_scaling_factor > 0:
            raise ValueError(f"routed_scaling_factor: expected a positive number or None, got {self.routed_scaling_factor}")
        if self.expert_map is None:
            if self.num_local_experts != self.num_experts:
                raise ValueError(f"expert_map: required when num_local_experts ({self.num_local_experts}) "
                                 f"differs from num_experts ({self.num_experts})")
            return
        if len(self.expert_map) != self.num_experts:
            raise ValueError(f"expert_map: expected {self.num_experts} entries (one per global expert), got {len(self.expert_map)}")
        local = sorted(i for i in self.expert_map if i != -1)
        if local != list(range(self.num_local_experts)) or any(i < -1 for i in self.expert_map):
            raise ValueError(f"expert_map: expected each local index 0..{self.num_local_experts - 1} exactly once "
                             f"and -1 elsewhere, got {list(self.expert_map)}")


def contiguous_expert_map(num_experts: int, ep_rank: int, ep_size: int) -> tuple[int, ...]:
    """Linear EP placement (vLLM's and SGLang's default): each rank holds a contiguous
    slice; the first ``num_experts % ep_size`` ranks hold one expert more."""
    if ep_size < 1 or not 0 <= ep_rank < ep_size:
        raise ValueError(f"ep_rank/ep_size: expected 0 <= ep_rank < ep_size, got {ep_rank}/{ep_size}")
    base, extra = divmod(num_experts, ep_size)
    start = ep_rank * base + min(ep_rank, extra)
    stop = start + base + (1 if ep_rank < extra else 0)
    return tuple(i - start if start <= i < stop else -1 for i in range(num_experts))
