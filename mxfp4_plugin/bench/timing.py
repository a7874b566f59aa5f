"""Timing on the GPU: CUDA-graph replays, medians; and the two ceilings measured in the run."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch

COPY_BYTES = 2 << 30  # 2 GiB: far beyond the L2
MATMUL_N = 8192
#: seconds of replays before a graph is timed (triton.testing.do_bench's default warm-up, 25 ms): a GPU left idle
#: while kernels compiled runs its first milliseconds slower (BENCHMARKS.md round 25)
WARMUP_S = 0.025


def _median_ms(fn: Callable[[], None], iters: int) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(iters):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def graph_seconds(calls: Sequence[Callable[[], object]], *, warmup: int = 3, iters: int = 20) -> float:
    """Median seconds of one call: ``calls`` (one per input set, so consecutive calls touch
    different weights) are captured back to back in one CUDA graph, replayed ``iters`` times after at least
    ``warmup`` replays and ``WARMUP_S`` seconds of them."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # compile and warm up outside the capture
        for call in calls:
            call()
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for call in calls:
            call()
    deadline = time.perf_counter() + WARMUP_S
    replays = 0
    while replays < warmup or time.perf_counter() < deadline:
        graph.replay()
        torch.cuda.synchronize()
        replays += 1
    ms = _median_ms(graph.replay, iters)
    del graph
    return ms / 1e3 / len(calls)


def eager_seconds(calls: Sequence[Callable[[], object]], *, iters: int = 5) -> float:
    """Median seconds of one call, each run on its own (for code that synchronises the host)."""
    for call in calls:
        call()
    return _median_ms(lambda: [call() for call in calls], iters) / 1e3 / len(calls)


def copy_bandwidth(device: torch.device) -> float:
    """Bytes per second of a large device-to-device copy, counting bytes read and written."""
    src = torch.empty(COPY_BYTES, dtype=torch.uint8, device=device).random_()
    dst = torch.empty_like(src)
    dst.copy_(src)
    ms = _median_ms(lambda: dst.copy_(src), 20)
    del src, dst
    return 2 * COPY_BYTES / (ms / 1e3)


def matmul_rate(device: torch.device) -> float:
    """FLOP per second of an 8192^3 bf16 matrix product on random data."""
    a = torch.randn(MATMUL_N, MATMUL_N, device=device, dtype=torch.bfloat16)
    b = torch.randn(MATMUL_N, MATMUL_N, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    ms = _median_ms(lambda: a @ b, 20)
    return 2 * MATMUL_N**3 / (ms / 1e3)
