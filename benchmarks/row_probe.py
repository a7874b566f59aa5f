"""Probe (not a test, not a backend): does the weight rows' alignment or K's last partial step hold
gpt-oss back? At 16-64 tokens the DeepSeek-like layer reads at 90-92% of the copy roofline, gpt-oss-120b at
78-82%, on the same kernel rows (BENCHMARKS.md round 23; what this probe found: round 25). gpt-oss's K (2880)
differs twice: its weight rows are 1440 bytes (not a multiple of a 128-byte line: 3 in 4 rows' K steps straddle
two lines) and it is 11.25 K steps of 256 (the last step decodes 192 zeros of every row, and no step loads its
words unmasked).

    python3 benchmarks/row_probe.py [TOKENS ...]    (default: 16 64 256 1024)

Per token count, the shipped table's row on three layers of gpt-oss-120b's structure (gpt-oss-120b's rows are
ANY's, so a layer of another size runs the same configs), ``base`` first and last so the times compare:
  base    hidden = intermediate = 2880, as prepared (rows 1440 bytes apart);
  rows128 the same weights, rows a multiple of 128 bytes apart (1536: a padded copy, values unchanged, so the
          outputs must be equal);
  k2816   hidden = intermediate = 2816 (11 whole K steps of 256, rows 1408 = 11 x 128 bytes).
Prints time and bytes of the touched experts per microsecond of each, as GB/s and % of the copy rate.
"""

from __future__ import annotations

import dataclasses
import sys

import torch

from mxfp4_plugin.backends.triton import TritonBackend
from mxfp4_plugin.bench import shapes
from mxfp4_plugin.bench.timing import copy_bandwidth, graph_seconds
from mxfp4_plugin.kernels.moe import fused_moe
from mxfp4_plugin.platform import detect

ROTATIONS = 4
LINE = 128  # bytes of an L2 cache line
LAYER = "gpt-oss-120b"


def rows_on_lines(t: torch.Tensor) -> torch.Tensor:
    """``t [E, N, K/2]`` (uint8) as a view with rows a multiple of ``LINE`` bytes apart, same values."""
    e, n, width = t.shape
    buffer = torch.zeros(e, n, -(-width // LINE) * LINE, dtype=t.dtype, device=t.device)
    buffer[..., :width] = t
    return buffer[..., :width]


def case(tokens: int, bandwidth: float, device: torch.device, platform) -> None:
    spec0 = shapes.SHAPES[LAYER]
    per_spec = {"base": spec0, "k2816": dataclasses.replace(spec0, hidden_size=2816, intermediate_size=2816)}
    base_out = None
    for variant in ("base", "rows128", "k2816", "base"):
        spec = per_spec.get(variant, spec0)
        weights = shapes.random_weights(spec, device, torch.Generator(device).manual_seed(0))
        backend = TritonBackend(spec, platform)
        backend.prepare(weights)
        experts = backend.experts
        if variant == "rows128":
            experts = dataclasses.replace(experts, w13=rows_on_lines(experts.w13), w2=rows_on_lines(experts.w2))
        sets, check = shapes.point_inputs(spec, tokens, ROTATIONS, device, 0)
        run = lambda s: fused_moe(s.x, s.topk_weights, s.topk_ids, experts, spec.activation)  # noqa: E731
        out = run(check)
        if variant == "rows128":
            print(f"  rows128 output equal to base: {torch.equal(out, base_out)}")
        elif variant == "base":
            base_out = out
        us = graph_seconds([lambda s=s: run(s) for s in sets]) * 1e6
        distinct = shapes.distinct_experts(sets)
        moved = distinct * shapes.bytes_per_expert(spec)
        gbs = moved / us / 1e3
        print(f"{LAYER}:{tokens} {variant:8s} {us:8.1f} us  {distinct:6.1f} experts  {gbs:7.1f} GB/s  "
              f"{100 * gbs * 1e9 / bandwidth:5.1f}% of copy", flush=True)
        del backend, weights, experts
        torch.cuda.empty_cache()


def main(tokens: list[str]) -> None:
    device = torch.device("cuda")
    platform = detect(device)
    bandwidth = copy_bandwidth(device)
    print(f"{torch.cuda.get_device_name(device)}; copy {bandwidth / 1e12:.2f} TB/s")
    for t in tokens or ["16", "64", "256", "1024"]:
        case(int(t), bandwidth, device, platform)


if __name__ == "__main__":
    main(sys.argv[1:])
