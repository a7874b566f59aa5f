"""Test helpers: random MXFP4 layers and an independent float64 MoE written from the spec.

Nothing here calls mxfp4_plugin's dequantization or activation code: the float64 path
decodes E2M1 from its bit fields, so the reference backend is checked against an
implementation that shares none of its code.
"""

from __future__ import annotations

import math

import torch


def e2m1_decode(code: int) -> float:
    """E2M1 from its bits: sign (bit 3), exponent (bits 2-1, bias 1), mantissa (bit 0)."""
    sign = -1.0 if code & 0b1000 else 1.0
    exponent = (code >> 1) & 0b11
    mantissa = code & 1
    if exponent == 0:  # subnormal: 0 or 0.5
        return sign * mantissa * 0.5
    return sign * (1 + mantissa / 2) * 2.0 ** (exponent - 1)


def dequantize_f64(blocks: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """``blocks [R, K/2]``, ``scales [R, K/32]`` -> float64 ``[R, K]``, element by element."""
    lut = torch.tensor([e2m1_decode(c) for c in range(16)], dtype=torch.float64)
    rows, half = blocks.shape
    low, high = (blocks & 0xF).long(), (blocks >> 4).long()
    codes = torch.empty(rows, 2 * half, dtype=torch.long)
    codes[:, 0::2], codes[:, 1::2] = low, high
    scale = torch.tensor([[math.ldexp(1.0, int(s) - 127) for s in row] for row in scales.tolist()], dtype=torch.float64)
    return lut[codes] * scale.repeat_interleave(32, dim=1)


def random_layer(num_experts: int, hidden: int, intermediate: int, *, bias: bool, act_dtype=torch.bfloat16,
                 generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random canonical tensors; scales near 127 keep magnitudes like a trained layer's."""
    def u8(*shape, low=0, high=256):
        return torch.randint(low, high, shape, dtype=torch.uint8, generator=generator)

    t = {
        "w13_weight": u8(num_experts, 2 * intermediate, hidden // 2),
        "w13_weight_scale": u8(num_experts, 2 * intermediate, hidden // 32, low=119, high=124),
        "w2_weight": u8(num_experts, hidden, intermediate // 2),
        "w2_weight_scale": u8(num_experts, hidden, intermediate // 32, low=119, high=124),
    }
    if bias:
        t["w13_bias"] = torch.randn(num_experts, 2 * intermediate, generator=generator).to(act_dtype)
        t["w2_bias"] = torch.randn(num_experts, hidden, generator=generator).to(act_dtype)
    return t


def random_routing(tokens: int, num_experts: int, top_k: int, *, generator: torch.Generator,
                   expert_bias: list[float] | None = None):
    """Distinct experts per token and softmax-normalised weights, as a router gives.
    ``expert_bias``: added to each expert's logits (a skewed router: hot and cold experts)."""
    logits = torch.randn(tokens, num_experts, generator=generator)
    if expert_bias is not None:
        logits += torch.tensor(expert_bias)
    weights, ids = torch.topk(logits, top_k, dim=-1)
    return torch.softmax(weights, dim=-1), ids.to(torch.int32)


def moe_f64(x, tensors, topk_weights, topk_ids, *, activation: str, alpha=None, limit=None,
            interleaved: bool = True, expert_map=None, routed_scaling_factor=None) -> torch.Tensor:
    """The layer computed token by token in float64, straight from the definition."""
    out = torch.zeros(x.shape[0], x.shape[1], dtype=torch.float64)
    cache = {}
    for t in range(x.shape[0]):
        xt = x[t].double()
        for slot in range(topk_ids.shape[1]):
            e = int(topk_ids[t, slot])
            if expert_map is not None:
                e = expert_map[e]
                if e < 0:
                    continue
            if e not in cache:
                cache[e] = (dequantize_f64(tensors["w13_weight"][e], tensors["w13_weight_scale"][e]),
                            dequantize_f64(tensors["w2_weight"][e], tensors["w2_weight_scale"][e]))
            w13, w2 = cache[e]
            h = w13 @ xt
            if "w13_bias" in tensors:
                h = h + tensors["w13_bias"][e].double()
            n = h.shape[0] // 2
            gate, up = (h[0::2], h[1::2]) if interleaved else (h[:n], h[n:])
            if activation == "silu":
                a = gate / (1 + torch.exp(-gate)) * up
            else:
                gate = torch.minimum(gate, torch.tensor(limit, dtype=torch.float64))
                up = up.clamp(-limit, limit)
                a = (up + 1) * gate / (1 + torch.exp(-alpha * gate))
            y = w2 @ a
            if "w2_bias" in tensors:
                y = y + tensors["w2_bias"][e].double()
            out[t] += float(topk_weights[t, slot]) * y
    if routed_scaling_factor is not None:
        out *= routed_scaling_factor
    return out


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    expected = expected.double()
    return float((actual.double() - expected).norm() / expected.norm().clamp_min(1e-300))
