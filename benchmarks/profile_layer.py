"""One MoE layer forward per backend inside a CUDA profiler range, for Nsight Compute:

    ncu --profile-from-start off --clock-control none --csv --metrics ... \
        python3 benchmarks/profile_layer.py gpt-oss-120b:256 deepseek-like:64

Each case: the bench's random layer and routing, a warm-up forward per backend (compiles and
prepares outside the range), then one profiled forward of ours and of OpenAI's triton_kernels.
"""

from __future__ import annotations

import sys

import torch

from mxfp4_plugin.bench import shapes
from mxfp4_plugin.platform import detect
from mxfp4_plugin.plugins import registered_backends

BACKENDS = ("triton", "triton_kernels")


def main(cases: list[str]) -> None:
    device = torch.device("cuda")
    platform = detect(device)
    registry = registered_backends()
    for case in cases:
        name, tokens = case.split(":")
        spec = shapes.SHAPES[name]
        gen = torch.Generator(device).manual_seed(0)
        weights = shapes.random_weights(spec, device, gen)
        inputs = shapes.random_inputs(spec, int(tokens), device, gen)
        for backend_name in BACKENDS:
            backend = registry[backend_name](spec, platform)
            backend.prepare(weights)
            for _ in range(2):
                backend.forward(inputs.x, inputs.topk_weights, inputs.topk_ids)
            torch.cuda.synchronize()
            torch.cuda.cudart().cudaProfilerStart()
            torch.cuda.nvtx.range_push(f"{case} {backend_name}")
            backend.forward(inputs.x, inputs.topk_weights, inputs.topk_ids)
            torch.cuda.synchronize()
            torch.cuda.nvtx.range_pop()
            torch.cuda.cudart().cudaProfilerStop()
            print(f"profiled {case} {backend_name}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
