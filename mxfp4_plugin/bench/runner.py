"""``mxfp4-plugin bench``: every backend that can run a layer here, side by side, in one process.

Per layer shape and token count: the output of each backend on fresh random data against
the ``reference`` backend in float32 (relative error), then its time (median of CUDA-graph
replays; ``reference`` synchronises the host, so it is timed eagerly and only up to a small
token count: it is slow), and the roofline of that point: the bytes of the experts the
routing touches over the copy bandwidth measured in this run, or the FLOPs over the bf16
matrix rate measured in this run, whichever is larger.

Each timed graph holds ``rotations`` forwards on different inputs and routings, so a small
layer's touched experts do not stay in the L2 cache from one forward to the next.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import platform as host
import re

import torch

from ..backends.base import Backend
from ..backends.reference import ReferenceBackend
from ..platform import Platform, detect
from ..plugins import registered_backends
from ..spec import MoESpec
from . import shapes as layers
from .timing import copy_bandwidth, eager_seconds, graph_seconds, matmul_rate

OURS = "triton"
PEER = "triton_kernels"
REL_ERR_LIMIT = 1e-2  # against float32: issue #4's bound for every point; a tune candidate above it never ranks


@dataclasses.dataclass
class BenchOptions:
    shapes: list[str]
    tokens: list[int]
    reference_max_tokens: int = 16
    rotations: int = 4
    iters: int = 20
    tune: bool = False
    tune_only: str | None = None  # a regular expression: tune only candidates whose description matches
    seed: int = 0
    progress: bool = True


def tune_timing(options: BenchOptions) -> dict:
    """How ``--tune`` times each candidate: on fewer routings and replays than the table's rows, so
    a tune of ~40 candidates per point stays short. Its times rank candidates against each other;
    they read a few percent lower than the table's and are never compared with the peer's."""
    return {"routings": min(2, options.rotations), "iters": max(5, options.iters // 2)}


def tune_candidates(tokens: int, only: str | None = None, shipped=None) -> list:
    """The candidate configs ``--tune`` times at a token count: ``shipped`` (the table's row there, always,
    first: every other time is read against it in the same process), then those that can win there
    (``configs.worth_trying``) and, with ``--tune-only``, whose description matches that regular
    expression (``re.search``). Where the shipped row stores GEMM2's results in the activation dtype, the
    grouped rivals do too: the tune ranks tiles, not the partials' dtype (round 23: 1.5-3.6% at 4096-8192)."""
    from ..kernels.moe_details.configs import CANDIDATES, worth_trying

    pattern = re.compile(only) if only else None
    rivals = [c for c in CANDIDATES if worth_trying(c, tokens) and (pattern is None or pattern.search(c.describe()))]
    if shipped is not None and shipped.partials_in_act_dtype:
        rivals = [dataclasses.replace(c, partials_in_act_dtype=True) if c.grouped else c for c in rivals]
    return [shipped] * (shipped is not None) + [c for c in rivals if c != shipped]


def backends_to_run(spec: MoESpec, platform: Platform) -> tuple[dict[str, type[Backend]], list[str]]:
    """Every registered backend that supports ``spec`` here, and a note for each one left out."""
    registry = dict(registered_backends())
    notes = []
    if "flashinfer" not in platform.packages:
        notes.append("flashinfer: not installed here, so no FlashInfer backend was measured")
    runnable = {}
    for name in sorted(registry):
        reason = registry[name].supports(spec, platform)
        if reason is None:
            runnable[name] = registry[name]
        else:
            notes.append(f"{name}: skipped for this layer: {reason}")
    return runnable, notes


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    expected = expected.double()
    return float((actual.double() - expected).norm() / expected.norm().clamp_min(1e-300))


def run_bench(options: BenchOptions) -> dict:
    if not torch.cuda.is_available():
        raise RuntimeError("bench: needs a CUDA GPU (the backends are timed with CUDA graphs)")
    device = torch.device("cuda")
    platform = detect(device)
    from tqdm import tqdm

    bandwidth, rate = copy_bandwidth(device), matmul_rate(device)
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"gpu": torch.cuda.get_device_name(device), "capability": list(platform.capability),
                    "host": host.node(), "torch": torch.__version__, "triton": _version("triton"),
                    "packages": sorted(platform.packages)},
        "ceilings": {"copy_bytes_per_s": bandwidth, "bf16_matmul_flop_per_s": rate},
        "options": dataclasses.asdict(options), "notes": [], "points": [], "tune": [],
        "tune_timing": tune_timing(options) if options.tune else None,
    }
    bar = tqdm(total=len(options.shapes) * len(options.tokens), disable=not options.progress, desc="bench")
    for shape in options.shapes:
        spec = layers.SHAPES[shape]
        _bench_shape(shape, spec, platform, device, options, report, bar)
    bar.close()
    return report


def _bench_shape(shape, spec, platform, device, options, report, bar) -> None:
    weights = layers.random_weights(spec, device, torch.Generator(device).manual_seed(options.seed))
    classes, notes = backends_to_run(spec, platform)
    report["notes"] += [f"{shape}: {n}" for n in notes]
    instances: dict[str, Backend] = {}
    for name, cls in classes.items():
        try:
            backend = cls(spec, platform)
            backend.prepare(weights)
            instances[name] = backend
        except Exception as exc:  # reported, never hidden: a peer that fails to prepare is a result
            report["notes"].append(f"{shape}: {name}: prepare failed: {exc!r}"[:400])
    note = classes[OURS].config_note(spec) if OURS in classes else None
    if note:  # tuned rows (MXFP4_PLUGIN_MOE_CONFIGS): which counts of this layer run them
        report["notes"].append(f"{shape}: {OURS}: {note}")
    reference = instances.get("reference") or _prepared(ReferenceBackend(spec, platform), weights)
    per_expert = layers.bytes_per_expert(spec)
    for tokens in options.tokens:
        sets, check = layers.point_inputs(spec, tokens, options.rotations, device, options.seed)
        expected = reference.forward(check.x.float(), check.topk_weights, check.topk_ids)
        distinct = layers.distinct_experts(sets)
        moved = distinct * per_expert + 2 * tokens * spec.hidden_size * spec.act_dtype.itemsize
        work = layers.flops(spec, tokens * spec.top_k)
        roof = max(moved / report["ceilings"]["copy_bytes_per_s"], work / report["ceilings"]["bf16_matmul_flop_per_s"])
        point = {"shape": shape, "tokens": tokens, "distinct_experts": distinct, "bytes": moved, "flops": work,
                 "roofline_us": roof * 1e6, "backends": {}}
        for name, backend in instances.items():
            point["backends"][name] = _measure(name, backend, sets, check, expected, tokens, options)
        if options.tune and OURS in instances:
            report["tune"] += _tune(shape, spec, instances[OURS], sets, check, expected, tokens, options)
        report["points"].append(point)
        bar.update()
    del instances, reference, weights
    torch.cuda.empty_cache()


def _prepared(backend: Backend, weights) -> Backend:
    backend.prepare(weights)
    return backend


def _measure(name, backend, sets, check, expected, tokens, options) -> dict:
    if name == "reference" and tokens > options.reference_max_tokens:
        return {"skipped": f"timed only up to {options.reference_max_tokens} tokens: it is slow"}
    try:
        err = rel_err(backend.forward(check.x, check.topk_weights, check.topk_ids), expected)
        calls = [functools.partial(backend.forward, s.x, s.topk_weights, s.topk_ids) for s in sets]
        if name == "reference":  # data-dependent loop over experts: synchronises, cannot be captured
            return {"us": eager_seconds(calls) * 1e6, "timing": "eager", "rel_err": err}
        return {"us": graph_seconds(calls, iters=options.iters) * 1e6, "timing": "cuda-graph", "rel_err": err}
    except Exception as exc:  # a failing backend is a result of the run, reported in the table
        return {"error": repr(exc)[:400]}


def _tune(shape, spec, ours, sets, check, expected, tokens, options) -> list[dict]:
    from tqdm import tqdm

    from ..backends.triton import layer_key
    from ..kernels.moe import fused_moe
    from ..kernels.moe_details.tuned_rows import to_dict

    timing = tune_timing(options)
    shipped, first, last = ours.row_for(tokens)  # the row ours runs here: a tuned row's, else the table's
    rows = []
    for config in tune_candidates(tokens, options.tune_only, shipped):
        row = {"shape": shape, "tokens": tokens, "config": config.describe(), "shipped": config == shipped,
               "layer": list(layer_key(spec)), "span": [first, last], "fields": to_dict(config)}
        try:
            out = fused_moe(check.x, check.topk_weights, check.topk_ids, ours.experts, spec.activation, config=config)
            row["rel_err"] = rel_err(out, expected)
            calls = [functools.partial(fused_moe, s.x, s.topk_weights, s.topk_ids, ours.experts, spec.activation,
                                       config=config) for s in sets]
            row["us"] = graph_seconds(calls[:timing["routings"]], iters=timing["iters"]) * 1e6
        except Exception as exc:
            row["error"] = repr(exc)[:300]
        rows.append(row)
        if options.progress:  # each candidate as it finishes: a tune cut short by a time limit still says what it found
            result = f"{row['us']:9.1f} us" if "us" in row else f"error {row['error'][:80]}"
            tqdm.write(f"tune {shape} {tokens}: {result} {row['config']}{' (shipped)' * row['shipped']}")
    return rows


def _version(package: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
