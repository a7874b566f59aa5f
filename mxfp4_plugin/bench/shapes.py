"""The layers the benchmark runs, and random MXFP4 weights and routings for them on the GPU."""

from __future__ import annotations

import dataclasses
import statistics
import zlib

import torch

from ..models import GPT_OSS_SWIGLU_ALPHA, GPT_OSS_SWIGLU_LIMIT
from ..spec import Activation, ActivationSpec, GateUpOrder, MoESpec
from ..weights import MoEWeights, canonical_params

GPT_OSS_ACTIVATION = ActivationSpec(Activation.SWIGLU_OAI, alpha=GPT_OSS_SWIGLU_ALPHA, limit=GPT_OSS_SWIGLU_LIMIT)

#: name -> one MoE layer (TP1, EP1).
SHAPES: dict[str, MoESpec] = {
    "gpt-oss-120b": MoESpec(num_experts=128, top_k=4, hidden_size=2880, intermediate_size=2880,
                            activation=GPT_OSS_ACTIVATION, gate_up_order=GateUpOrder.INTERLEAVED, has_bias=True),
    "gpt-oss-20b": MoESpec(num_experts=32, top_k=4, hidden_size=2880, intermediate_size=2880,
                           activation=GPT_OSS_ACTIVATION, gate_up_order=GateUpOrder.INTERLEAVED, has_bias=True),
    "deepseek-like": MoESpec(num_experts=256, top_k=8, hidden_size=4096, intermediate_size=2048,
                             activation=ActivationSpec(Activation.SILU), gate_up_order=GateUpOrder.CONCATENATED,
                             has_bias=False),
}


def random_weights(spec: MoESpec, device: torch.device, generator: torch.Generator) -> MoEWeights:
    """Uniformly random E2M1 codes; scales 2**-8..2**-4 keep magnitudes like a trained layer's."""
    tensors = {}
    for p in canonical_params(spec):
        if p.dtype == torch.uint8:
            low, high = (119, 124) if p.name.endswith("_scale") else (0, 256)
            tensors[p.name] = torch.randint(low, high, p.shape, dtype=torch.uint8, device=device, generator=generator)
        else:
            tensors[p.name] = torch.randn(p.shape, device=device, generator=generator).to(p.dtype)
    return MoEWeights.from_tensors(spec, tensors)


@dataclasses.dataclass(frozen=True)
class Inputs:
    x: torch.Tensor
    topk_weights: torch.Tensor
    topk_ids: torch.Tensor


def random_inputs(spec: MoESpec, tokens: int, device: torch.device, generator: torch.Generator) -> Inputs:
    """Activations ~ N(0, 1) and a router's choice: top-k of random logits, softmax over the k."""
    x = torch.randn(tokens, spec.hidden_size, device=device, generator=generator).to(spec.act_dtype)
    logits = torch.randn(tokens, spec.num_experts, device=device, generator=generator)
    weights, ids = torch.topk(logits, spec.top_k, dim=-1)
    return Inputs(x, torch.softmax(weights, dim=-1), ids.to(torch.int32))


def point_inputs(spec: MoESpec, tokens: int, rotations: int, device: torch.device,
                 seed: int) -> tuple[list[Inputs], Inputs]:
    """A bench point's ``rotations`` timed inputs and the one it checks, from a generator of their own
    seeded by ``seed`` and ``tokens``: a point draws the same routings whatever token counts ran before it
    (at a few tokens the time follows the experts drawn: gpt-oss-120b at 4 tokens 104 us on 14.75
    distinct experts, 116 on 15.5, H100 round 18), so runs with different ``--tokens`` lists compare."""
    # 32 bits: the CPU generator (Mersenne twister) keeps only a seed's low 32 bits
    generator = torch.Generator(device).manual_seed(zlib.crc32(f"{seed}/{tokens}".encode()))
    timed = [random_inputs(spec, tokens, device, generator) for _ in range(rotations)]
    return timed, random_inputs(spec, tokens, device, generator)


def distinct_experts(sets: list[Inputs]) -> float:
    """Mean number of distinct experts the routings of ``sets`` touch (the roofline's weight bytes count these)."""
    return statistics.mean(int(torch.unique(s.topk_ids).numel()) for s in sets)


def bytes_per_expert(spec: MoESpec) -> int:
    """Canonical MXFP4 bytes of one expert: codes, scales and biases."""
    e = spec.num_local_experts
    return sum(int(torch.Size(p.shape).numel()) * p.dtype.itemsize for p in canonical_params(spec)) // e


def flops(spec: MoESpec, pairs: int) -> int:
    """Multiply-adds x 2 of both GEMMs for ``pairs`` (token, expert) pairs."""
    h, i = spec.hidden_size, spec.intermediate_size
    return 2 * pairs * (h * 2 * i + i * h)

