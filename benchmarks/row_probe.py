"""Probe (not a test, not a backend): does the weight rows' alignment or K's last partial step hold
gpt-oss back? At 16-64 tokens the DeepSeek-like layer reads at 90-92% of the copy roofline, gpt-oss-120b at
78-82%, on the same kernel rows (BENCHMARKS.md round 23; what this probe found: round 25). gpt-oss's K (2880)
differs twice: its weight rows are 1440 bytes (not a multiple of a 128-byte line: 3 in 4 rows' K steps straddle two lines) and it is 11.25
K steps of 256 (the last step decodes 192 zeros of every row, and no step loads its words unmasked).

    python3 benchmarks/row_probe.py [gpt-oss-120b:16 ...]

Per case, the shipped table's row on three layers of gpt-oss-120b's structure (the first and last in the
same process, so the times compare):
  base    hidden = intermediate = 2880, as prepared (rows 1440 bytes apart);
  rows128 the same weights, rows 1536 bytes apart (a padded copy, values unchanged: outputs must be equal);
  k2816   hidden = intermediate = 2816 (11 whole K steps of 256, rows 1408 = 11 x 128 bytes).
Prints time and bytes of the touched experts per microsecond of each, as GB/s and % of the copy rate.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys

import torch

from mxfp4_plugin.backends.triton import TritonBackend
from mxfp4_plugin.bench import shapes
from mxfp4_plugin.bench.timing import copy_bandwidth, graph_seconds
from mxfp4_plugin.kernels.moe import fused_moe
from mxfp4_plugin.platform import detect

ROTATIONS = 4


def rows_apart(t: torch.Tensor, row_bytes: int) -> torch.Tensor:
    """``t [E, N, K/2]`` (uint8) as a view with rows ``row_bytes`` apart, same values."""
    e, n, width = t.shape
    buffer = torch.zeros(e, n, row_bytes, dtype=t.dtype, device=t.device)
    buffer[..., :width] = t
    return buffer[..., :width]


def case(name: str, tokens: int, bandwidth: float, device: torch.device, platform) -> None:
    spec0 = shapes.SHAPES[name]
    per_spec = {"base": spec0, "k2816": dataclasses.replace(spec0, hidden_size=2816, intermediate_size=2816)}
    results = {}
    for variant in ("base", "rows128", "k2816", "base"):
        spec = per_spec.get(variant, spec0)
        weights = shapes.random_weights(spec, device, torch.Generator(device).manual_seed(0))
        backend = TritonBackend(spec, platform)
        backend.prepare(weights)
        experts = backend.experts
        if variant == "rows128":
            experts = dataclasses.replace(experts, w13=rows_apart(experts.w13, 1536), w2=rows_apart(experts.w2, 1536))
        sets, check = shapes.point_inputs(spec, tokens, ROTATIONS, device, 0)
        run = lambda s: fused_moe(s.x, s.topk_weights, s.topk_ids, experts, spec.activation)  # noqa: E731
        out = run(check)
        if variant == "rows128":
            same = torch.equal(out, results["base"][0][2])
            print(f"  rows128 output equal to base: {same}")
        us = graph_seconds([lambda s=s: run(s) for s in sets]) * 1e6
        distinct = statistics.mean(int(torch.unique(s.topk_ids).numel()) for s in sets)
        moved = distinct * shapes.bytes_per_expert(spec)
        gbs = moved / us / 1e3
        results.setdefault(variant, []).append((us, gbs, out))
        print(f"{name}:{tokens} {variant:8s} {us:8.1f} us  {distinct:6.1f} experts  {gbs:7.1f} GB/s  "
              f"{100 * gbs * 1e9 / bandwidth:5.1f}% of copy", flush=True)
        del backend, weights, experts
        torch.cuda.empty_cache()


def main(cases: list[str]) -> None:
    device = torch.device("cuda")
    platform = detect(device)
    bandwidth = copy_bandwidth(device)
    print(f"{torch.cuda.get_device_name(device)}; copy {bandwidth / 1e12:.2f} TB/s")
    for c in cases or ["gpt-oss-120b:16", "gpt-oss-120b:64", "gpt-oss-120b:256", "gpt-oss-120b:1024"]:
        name, tokens = c.split(":")
        case(name, int(tokens), bandwidth, device, platform)


if __name__ == "__main__":
    main(sys.argv[1:])
